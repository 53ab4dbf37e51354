import CrispCore
import CrispOCI
@testable import CrispSecurity
import Foundation
import Testing

@Suite struct SeccompProfileTests {
    static let x86 = SecurityHost(machine: "x86_64", kernelMajor: 6, kernelMinor: 18)
    static let arm = SecurityHost(machine: "aarch64", kernelMajor: 6, kernelMinor: 1)

    static func allowed(_ spec: RuntimeSpec.Seccomp) -> Set<String> {
        Set((spec.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" }.flatMap(\.names))
    }

    static func unconditionallyAllowed(_ spec: RuntimeSpec.Seccomp) -> Set<String> {
        Set((spec.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" && $0.args == nil }.flatMap(\.names))
    }

    @Test func builtInDefaultIsAnAllowlistThatFailsWithEPERM() {
        let p = SeccompPolicy.builtInDefault
        #expect(p.defaultAction == "SCMP_ACT_ERRNO")
        #expect(p.defaultErrnoRet == 1)
        let spec = SeccompCompiler.compile(p, capabilities: [], host: Self.x86)
        let allowed = Self.allowed(spec)
        #expect(allowed.contains("read") && allowed.contains("execve") && allowed.contains("futex"))
        for blocked in ["kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key", "pivot_root", "mount", "umount2",
                        "bpf", "perf_event_open", "init_module", "finit_module", "delete_module", "ptrace", "unshare", "setns",
                        "clock_settime", "settimeofday", "swapon", "io_uring_setup", "reboot", "open_by_handle_at"] {
            #expect(!allowed.contains(blocked), "\(blocked) must not be allowed without capabilities")
        }
    }

    @Test(arguments: [
        ("CAP_SYS_ADMIN", ["mount", "umount2", "unshare", "setns", "bpf", "perf_event_open"]),
        ("CAP_SYS_PTRACE", ["ptrace", "process_vm_readv", "kcmp"]),
        ("CAP_SYS_TIME", ["clock_settime", "settimeofday"]),
        ("CAP_SYS_MODULE", ["init_module", "finit_module", "delete_module"]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_CHROOT", ["chroot"]),
    ])
    func capabilityOpensItsSyscalls(cap: String, syscalls: [String]) {
        let with = Self.allowed(SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [cap], host: Self.x86))
        let without = Self.allowed(SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: Self.x86))
        for s in syscalls {
            #expect(with.contains(s), "\(s) with \(cap)")
            #expect(!without.contains(s), "\(s) without \(cap)")
        }
    }

    @Test func keyringAndKexecStayBlockedEvenWithEveryCapability() {
        let all = Set(LinuxCapabilities.all.map { "CAP_" + $0 })
        let allowed = Self.allowed(SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: all, host: Self.x86))
        for s in ["keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "pivot_root"] { #expect(!allowed.contains(s)) }
    }

    @Test func cloneMakesNoNamespaceWithoutSysAdmin() throws {
        let spec = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: ["CAP_CHOWN"], host: Self.x86)
        let clone = try #require(spec.syscalls?.first { $0.names == ["clone"] })
        #expect(clone.args == [RuntimeSpec.Seccomp.Arg(index: 0, value: 0x7E02_0000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")])
        #expect(!Self.unconditionallyAllowed(spec).contains("clone"))
        let clone3 = try #require(spec.syscalls?.first { $0.names == ["clone3"] })
        #expect(clone3.action == "SCMP_ACT_ERRNO" && clone3.errnoRet == 38)

        let admin = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: ["CAP_SYS_ADMIN"], host: Self.x86)
        #expect(Self.unconditionallyAllowed(admin).isSuperset(of: ["clone", "clone3"]))
        #expect(!(admin.syscalls ?? []).contains { $0.names == ["clone3"] && $0.action == "SCMP_ACT_ERRNO" })
    }

    @Test func personalityOnlyTakesTheSafeDomains() {
        let spec = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: Self.x86)
        let values = (spec.syscalls ?? []).filter { $0.names == ["personality"] }.compactMap { $0.args?.first?.value }
        #expect(Set(values) == [0, 8, 0x20000, 0x20008, 0xffff_ffff])
        #expect(!Self.unconditionallyAllowed(spec).contains("personality"))
    }

    @Test func architecturesFollowTheHost() {
        let x = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: Self.x86)
        #expect(x.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #expect(Self.allowed(x).contains("arch_prctl"))
        #expect(!Self.allowed(x).contains("set_tls"))
        let a = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: Self.arm)
        #expect(a.architectures == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        #expect(Self.allowed(a).contains("set_tls"))
        #expect(!Self.allowed(a).contains("arch_prctl"))
        let unknown = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: SecurityHost(machine: ""))
        #expect(unknown.architectures == nil)
    }

    /// A kernel without x32 gets no x32 rules (runc compiles each architecture at every create);
    /// a profile that names its architectures keeps them all.
    @Test func anArchitectureTheKernelDoesNotRunIsLeftOut() throws {
        var host = Self.x86
        host.kernelLacksArchitectures = ["SCMP_ARCH_X32"]
        let x = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: host)
        #expect(x.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
        #expect(x.syscalls == SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: Self.x86).syscalls)
        let named = try SeccompProfile.parse(Array(#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#.utf8), source: "/p.json")
        #expect(SeccompCompiler.compile(named, capabilities: [], host: host).architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])
    }

    @Test func compiledDefaultEncodesAsOCISeccomp() throws {
        let spec = SeccompCompiler.compile(SeccompPolicy.builtInDefault, capabilities: [], host: Self.x86)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(spec)) as? [String: Any]
        #expect(json?["defaultAction"] as? String == "SCMP_ACT_ERRNO")
        #expect(json?["defaultErrnoRet"] as? Int == 1)
        #expect(json?["archMap"] == nil && json?["syscalls"] != nil)
    }

    @Test func dockerStyleLocalhostProfile() throws {
        let text = #"""
        {"defaultAction": "SCMP_ACT_ALLOW",
         "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"},
                      {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                      {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["arm64"]}},
                      {"names": ["chown"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CHOWN"]}},
                      {"names": ["fchown"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "7.0"}}]}
        """#
        let p = try SeccompProfile.parse(Array(text.utf8), source: "/p.json")
        let spec = SeccompCompiler.compile(p, capabilities: ["CAP_CHOWN"], host: Self.x86)
        #expect(spec.defaultAction == "SCMP_ACT_ALLOW")
        #expect(spec.architectures == nil)
        #expect(spec.syscalls == [
            RuntimeSpec.Seccomp.Syscall(names: ["mkdir"], action: "SCMP_ACT_ERRNO"),
            RuntimeSpec.Seccomp.Syscall(names: ["mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13),
        ])
    }

    @Test(arguments: [
        ("{", "not valid JSON"),
        (#"{"syscalls": []}"#, "\"defaultAction\" is missing"),
        (#"{"defaultAction": "SCMP_ACT_MAYBE"}"#, "unknown action \"SCMP_ACT_MAYBE\""),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}"#, "names no syscall"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_NOTIFY"}]}"#, "SCMP_ACT_NOTIFY"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#, "argument index 6"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}"#, "unknown operator \"EQ\""),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}"#, "unknown architecture"),
        (#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"]}"#, "unknown flag"),
        (#"{"defaultAction": 3}"#, "wrong type at defaultAction"),
    ])
    func malformedProfilesNameFileAndProblem(text: String, problem: String) {
        do {
            _ = try SeccompProfile.parse(Array(text.utf8), source: "/etc/p.json")
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("/etc/p.json"), "\(error.message)")
            #expect(error.message.contains(problem), "\(error.message)")
        }
    }
}
