import IntegrationSupport
import CRIAPI
import CrispOS
import Foundation
import GRPCCore
import Testing

/// Seccomp, privileged containers and their reporting, through crispd, conmon and runc.
/// AppArmor and SELinux are off on this host: their decisions are unit-tested
/// (CrispSecurityTests), and the integration here only checks that naming one fails clearly.
@Suite(.serialized) struct SecurityTests {
    typealias Lifecycle = CRI

    static func profile(_ type: Runtime_V1_SecurityProfile.ProfileType, _ ref: String = "") -> Runtime_V1_SecurityProfile {
        var p = Runtime_V1_SecurityProfile()
        p.profileType = type
        p.localhostRef = ref
        return p
    }

    static func seccompMode(_ runtime: Lifecycle.Client, _ id: String) async throws -> String {
        try await Lifecycle.exec(runtime, id, "grep '^Seccomp:' /proc/self/status").out
            .split(separator: "\t").last.map(String.init) ?? ""
    }

    static func verboseInfo(_ runtime: Lifecycle.Client, _ id: String) async throws -> [String: Any] {
        var r = Runtime_V1_ContainerStatusRequest()
        r.containerID = id
        r.verbose = true
        let info = try await runtime.containerStatus(r).info["info"] ?? "{}"
        return (try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any]) ?? [:]
    }

    /// RuntimeDefault (asked for, and unset) filters syscalls: `unshare` of a user namespace
    /// fails with EPERM; Unconfined with CAP_SYS_ADMIN can; a privileged container runs
    /// without a filter, may mount, and sees the host's devices.
    @Test func runtimeDefaultUnconfinedAndPrivileged() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "seccomp", world: world) { $0.linux.securityContext.privileged = true }
            let sleep = ["/bin/sleep", "3600"]
            let asked = try await Lifecycle.startContainer(runtime, pod: pod, "default", sleep) {
                $0.linux.securityContext.seccomp = Self.profile(.runtimeDefault)
            }
            let unset = try await Lifecycle.startContainer(runtime, pod: pod, "unset", sleep)
            for id in [asked, unset] {
                #expect(try await Self.seccompMode(runtime, id) == "2")
                let blocked = try await Lifecycle.exec(runtime, id, "/bin/busybox unshare -U /bin/true 2>&1")
                #expect(blocked.code != 0 && blocked.out.contains("Operation not permitted"), "\(blocked)")
                // Everyday work is untouched by the filter.
                #expect(try await Lifecycle.exec(runtime, id, "mkdir -p /tmp/d && echo ok > /tmp/d/f && cat /tmp/d/f").out == "ok")
            }
            #expect(try await Self.verboseInfo(runtime, asked)["seccompProfile"] as? String == "RuntimeDefault")

            let unconfined = try await Lifecycle.startContainer(runtime, pod: pod, "unconfined", sleep) {
                $0.linux.securityContext.seccomp = Self.profile(.unconfined)
                $0.linux.securityContext.capabilities.addCapabilities = ["SYS_ADMIN"]
            }
            #expect(try await Self.seccompMode(runtime, unconfined) == "0")
            let allowed = try await Lifecycle.exec(runtime, unconfined, "/bin/busybox unshare -U /bin/true 2>&1")
            #expect(allowed.code == 0, "\(allowed)")
            #expect(try await Self.verboseInfo(runtime, unconfined)["seccompProfile"] as? String == "Unconfined")

            let privileged = try await Lifecycle.startContainer(runtime, pod: pod, "privileged", sleep) {
                $0.linux.securityContext.privileged = true
                $0.linux.securityContext.seccomp = Self.profile(.runtimeDefault)
            }
            #expect(try await Self.seccompMode(runtime, privileged) == "0")
            let mounted = try await Lifecycle.exec(runtime, privileged, "mkdir -p /mnt/t && mount -t tmpfs tmpfs /mnt/t 2>&1 && grep -c ' /mnt/t tmpfs' /proc/self/mounts")
            #expect(mounted.code == 0 && mounted.out == "1", "\(mounted)")
            // A device the host has and an unprivileged container never gets.
            let hostOnly = ["loop-control", "kmsg", "fuse", "autofs", "cpu_dma_latency"]
                .first { FileManager.default.fileExists(atPath: "/dev/" + $0) }
            if let hostOnly {
                #expect(try await Lifecycle.exec(runtime, privileged, "test -c /dev/\(hostOnly) && echo yes").out == "yes")
                #expect(try await Lifecycle.exec(runtime, asked, "test -e /dev/\(hostOnly) || echo no").out == "no")
            }
            let info = try await Self.verboseInfo(runtime, privileged)
            #expect(info["privileged"] as? Bool == true && info["seccompProfile"] as? String == "Unconfined")
            try await Lifecycle.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }

    /// A localhost profile that blocks mkdir makes mkdir fail. A missing, malformed or relative
    /// profile, or an AppArmor profile on this AppArmor-less host, fails CreateContainer with
    /// InvalidArgument naming the problem, and leaves no container behind.
    @Test func localhostProfilesAndClearRefusals() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let dir = world.crispd.dir + "/seccomp"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#
            .write(toFile: dir + "/no-mkdir.json", atomically: true, encoding: .utf8)
        try #"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]"#
            .write(toFile: dir + "/broken.json", atomically: true, encoding: .utf8)
        try await world.crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "localhost", world: world)
            let blocked = try await Lifecycle.startContainer(runtime, pod: pod, "no-mkdir", ["/bin/sleep", "3600"]) {
                $0.linux.securityContext.seccomp = Self.profile(.localhost, dir + "/no-mkdir.json")
            }
            let r = try await Lifecycle.exec(runtime, blocked, "mkdir /tmp/x 2>&1")
            #expect(r.code != 0 && r.out.contains("Operation not permitted"), "\(r)")
            #expect(try await Self.seccompMode(runtime, blocked) == "2")
            #expect(try await Self.verboseInfo(runtime, blocked)["seccompProfile"] as? String == "localhost/\(dir)/no-mkdir.json")
            // The deprecated field, as older kubelets send it.
            let old = try await Lifecycle.startContainer(runtime, pod: pod, "deprecated", ["/bin/sleep", "3600"]) {
                $0.linux.securityContext.seccompProfilePath = "localhost/" + dir + "/no-mkdir.json"
            }
            #expect(try await Lifecycle.exec(runtime, old, "mkdir /tmp/x 2>&1").code != 0)

            let refusals: [(String, (inout Runtime_V1_ContainerConfig) -> Void, String)] = [
                ("missing", { $0.linux.securityContext.seccomp = Self.profile(.localhost, dir + "/absent.json") }, "absent.json"),
                ("malformed", { $0.linux.securityContext.seccomp = Self.profile(.localhost, dir + "/broken.json") }, "broken.json"),
                ("relative", { $0.linux.securityContext.seccomp = Self.profile(.localhost, "no-mkdir.json") }, "absolute"),
                ("bad-path", { $0.linux.securityContext.seccompProfilePath = "runtime/other" }, "runtime/other"),
                ("apparmor", { $0.linux.securityContext.apparmor = Self.profile(.localhost, "my-profile") }, "AppArmor is not enabled"),
            ]
            for (name, configure, mention) in refusals {
                do {
                    _ = try await Lifecycle.startContainer(runtime, pod: pod, name, ["/bin/true"], configure: configure)
                    Issue.record("container \(name) was created")
                } catch let e as RPCError {
                    #expect(e.code == .invalidArgument, "\(name): \(e)")
                    #expect(e.message.contains(mention), "\(name): \(e.message)")
                }
            }
            // RuntimeDefault and Unconfined AppArmor are no-ops where AppArmor is off.
            _ = try await Lifecycle.startContainer(runtime, pod: pod, "apparmor-default", ["/bin/sleep", "3600"]) {
                $0.linux.securityContext.apparmor = Self.profile(.runtimeDefault)
            }
            var list = Runtime_V1_ListContainersRequest()
            list.filter.podSandboxID = pod.id
            let names = try await runtime.listContainers(list).containers.map(\.metadata.name).sorted()
            #expect(names == ["apparmor-default", "deprecated", "no-mkdir"])
            let records = try FileManager.default.contentsOfDirectory(atPath: world.crispd.root + "/containers")
            #expect(records.count == 3, "container records: \(records)")
            try await Lifecycle.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }

    /// Where the host has AppArmor or SELinux, a RuntimeDefault container runs confined by
    /// crisp-default, and an SELinux container runs as container_t with its pod's MCS level.
    /// This host has neither: the test says so and checks nothing else.
    @Test func appArmorAndSELinuxConfineWhereTheHostHasThem() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let appArmor = readSmallFile("/sys/module/apparmor/parameters/enabled")?.hasPrefix("Y") == true
            && FileManager.default.fileExists(atPath: "/sys/kernel/security/apparmor")
        let selinux = FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce")
        guard appArmor || selinux else {
            print("skipped: neither AppArmor (/sys/module/apparmor/parameters/enabled) nor SELinux (/sys/fs/selinux) is enabled on this host")
            return
        }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "lsm", world: world)
            let id = try await Lifecycle.startContainer(runtime, pod: pod, "confined", ["/bin/sleep", "3600"]) {
                $0.linux.securityContext.apparmor = Self.profile(.runtimeDefault)
            }
            let current = try await Lifecycle.exec(runtime, id, "cat /proc/self/attr/current").out
            if appArmor { #expect(current.hasPrefix("crisp-default"), "\(current)") }
            if selinux { #expect(current.contains(":container_t:s0:c"), "\(current)") }
            try await Lifecycle.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }
}
