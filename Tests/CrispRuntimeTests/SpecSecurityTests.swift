import CrispCore
import CrispOCI
@testable import CrispRuntime
import CrispSecurity
import Testing

/// How the spec builder applies the security decisions: seccomp compiled against the final
/// capability set (after drops, adds and the daemon's bounding set), nothing for privileged
/// containers, AppArmor and SELinux labels where given.
@Suite struct SpecSecurityTests {
    static func input(_ configure: (inout ContainerSpecInput) -> Void = { _ in }) -> ContainerSpecInput {
        var i = ContainerSpecInput(id: "c1", rootfs: "/r")
        i.process.command = ["/bin/sh"]
        i.defaults.capabilities = ["CHOWN", "NET_BIND_SERVICE"]
        i.defaults.securityHost = SecurityHost(machine: "x86_64")
        i.security.seccomp = .profile(name: "RuntimeDefault", SeccompPolicy.builtInDefault)
        configure(&i)
        return i
    }

    static func allowed(_ spec: RuntimeSpec) -> Set<String> {
        Set((spec.linux?.seccomp?.syscalls ?? []).filter { $0.action == "SCMP_ACT_ALLOW" && $0.args == nil }.flatMap(\.names))
    }

    @Test func seccompFollowsTheFinalCapabilities() throws {
        let plain = try SpecBuilder().build(Self.input()).spec
        #expect(plain.linux?.seccomp?.defaultAction == "SCMP_ACT_ERRNO")
        #expect(plain.linux?.seccomp?.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #expect(!Self.allowed(plain).contains("ptrace"))
        let added = try SpecBuilder().build(Self.input { $0.security.addCapabilities = ["SYS_PTRACE"] }).spec
        #expect(Self.allowed(added).contains("ptrace"))
        // A capability the daemon cannot grant is cut, and so is the syscall it would open.
        let bounded = try SpecBuilder().build(Self.input {
            $0.security.addCapabilities = ["SYS_PTRACE"]
            $0.defaults.boundingCapabilities = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
        }).spec
        #expect(!Self.allowed(bounded).contains("ptrace"))
    }

    @Test func privilegedAndUnconfinedGetNoFilterOrProfile() throws {
        let privileged = try SpecBuilder().build(Self.input {
            $0.security.privileged = true
            $0.security.appArmor = .profile("crisp-default")
        }).spec
        #expect(privileged.linux?.seccomp == nil)
        #expect(privileged.process?.apparmorProfile == nil)
        let unconfined = try SpecBuilder().build(Self.input { $0.security.seccomp = .unconfined }).spec
        #expect(unconfined.linux?.seccomp == nil)
    }

    @Test func appArmorAndSELinuxLabelsGoWhereTheRuntimeReadsThem() throws {
        let spec = try SpecBuilder().build(Self.input {
            $0.security.appArmor = .profile("crisp-default")
            $0.security.selinux = SELinuxLabels.make(options: SELinuxOptions(), podLevel: "s0:c3,c9", privileged: false)
        }).spec
        #expect(spec.process?.apparmorProfile == "crisp-default")
        #expect(spec.process?.selinuxLabel == "system_u:system_r:container_t:s0:c3,c9")
        #expect(spec.linux?.mountLabel == "system_u:object_r:container_file_t:s0:c3,c9")
        let none = try SpecBuilder().build(Self.input()).spec
        #expect(none.process?.apparmorProfile == nil && none.process?.selinuxLabel == nil && none.linux?.mountLabel == nil)
    }

    @Test func ambientCapabilitiesReachEverySet() throws {
        let spec = try SpecBuilder().build(Self.input {
            $0.security.runAsUser = 1000
            $0.security.addAmbientCapabilities = ["NET_RAW", "net_bind_service"]
        }).spec
        let caps = try #require(spec.process?.capabilities)
        #expect(caps.ambient == ["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])
        #expect(caps.inheritable == ["CAP_NET_RAW", "CAP_NET_BIND_SERVICE"])
        #expect(caps.permitted?.contains("CAP_NET_RAW") == true && caps.bounding?.contains("CAP_NET_RAW") == true)
        #expect(throws: CrispError.self) { try SpecBuilder().build(Self.input { $0.security.addAmbientCapabilities = ["NOPE"] }) }
        let none = try SpecBuilder().build(Self.input()).spec
        #expect(none.process?.capabilities?.ambient == nil)
    }

    @Test func podUserNamespaceIsJoinedWithItsMappings() throws {
        let m = IDMap(containerID: 0, hostID: 1000, length: 100_000)
        let spec = try SpecBuilder().build(Self.input { $0.sandbox.userNamespace = ("/var/run/userns/crisp-p", m, m) }).spec
        #expect(spec.linux?.namespaces?.contains(RuntimeSpec.Namespace(type: "user", path: "/var/run/userns/crisp-p")) == true)
        #expect(spec.linux?.uidMappings == [RuntimeSpec.IDMapping(containerID: 0, hostID: 1000, size: 100_000)])
        #expect(spec.linux?.gidMappings == [RuntimeSpec.IDMapping(containerID: 0, hostID: 1000, size: 100_000)])
        let host = try SpecBuilder().build(Self.input()).spec
        #expect(host.linux?.namespaces?.contains { $0.type == "user" } == false && host.linux?.uidMappings == nil)
    }
}
