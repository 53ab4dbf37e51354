import IntegrationSupport
import CRIAPI
import CrispOS
import Foundation
import GRPCCore
import Testing

/// What a real kubelet sends on this host, through crispd, conmon and runc: pod sysctls, which
/// every container of the pod must carry, and hugepage limits for page sizes whose controller
/// this (hybrid cgroup) host lacks.
@Suite(.serialized) struct SysctlAndLimitTests {
    typealias Lifecycle = CRI

    /// A crispd with busybox seeded and a CNI bridge network of its own (`BRIDGE_PREFIX` plus a
    /// random number, subnet `10.NET.N.0/24`). The caller deletes the bridge after `world.cleanup()`.
    static func bridgeWorld(bridgePrefix: String, net: Int,
                            extraPlugins: [String] = []) async throws -> (world: CRIWorld, bridge: String) {
        let crispd = try CrispdProcess()
        let n = Int.random(in: 10...250)
        let bridge = "\(bridgePrefix)\(n)"
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        try """
            {"cniVersion": "1.0.0", "name": "crisp-it", "plugins": [
              {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "dataDir": "\(crispd.dir)/ipam", "ranges": [[{"subnet": "10.\(net).\(n).0/24"}]]}}\(extraPlugins.map { ", " + $0 }.joined())]}
            """.write(toFile: crispd.networkDir + "/10-it.conflist", atomically: true, encoding: .utf8)
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", "/usr/lib/cni"])
        return (CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"), bridge)
    }

    /// The kubelet's name for a page size (`HugePageUnitSizeFromByteSize`): 2048 kB → "2MB".
    static func kubeletPageSize(directory: String) -> String? {
        guard directory.hasPrefix("hugepages-"), directory.hasSuffix("kB"),
              var size = Int64(directory.dropFirst("hugepages-".count).dropLast(2)).map({ $0 * 1024 }) else { return nil }
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var unit = 0
        while size % 1024 == 0 && unit < units.count - 1 {
            size /= 1024
            unit += 1
        }
        return "\(size)\(units[unit])"
    }

    /// A pod with its own network namespace (CNI bridge) and two sysctls, one of its IPC
    /// namespace and one of its network namespace: both containers see them, though no infra
    /// container runs. A host-wide sysctl, or a net.* one in a host-network pod, is refused.
    @Test func podSysctlsReachEveryContainerAndOthersAreRefused() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        let (world, bridge) = try await Self.bridgeWorld(bridgePrefix: "cris", net: 251)
        let crispd = world.crispd
        defer {
            world.cleanup()
            PodNetworkTests.deleteBridge(bridge)
        }
        try await crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "sysctls", world: world) {
                $0.linux.securityContext.namespaceOptions.network = .pod
                // The kubelet passes slashes through when the pod spec uses them.
                $0.linux.sysctls = ["kernel.shm_rmid_forced": "1", "net/ipv4/ip_unprivileged_port_start": "1000"]
            }
            let read = "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start"
            for name in ["first", "second"] {
                let c = try await Lifecycle.startContainer(runtime, pod: pod, name, ["/bin/sleep", "3600"])
                let got = try await Lifecycle.exec(runtime, c, read)
                #expect(got.code == 0)
                #expect(got.out == "1\n1000", "container \(name) read \(got.out)")
            }
            try await Lifecycle.removePod(runtime, pod.id)

            for (key, hostNetwork) in [("kernel.panic", false), ("net.ipv4.ip_unprivileged_port_start", true)] {
                do {
                    _ = try await Lifecycle.runPod(runtime, "refused-\(hostNetwork)", world: world) {
                        $0.linux.securityContext.namespaceOptions.network = hostNetwork ? .node : .pod
                        $0.linux.sysctls = [key: "1"]
                    }
                    Issue.record("pod with sysctl \(key) (host network \(hostNetwork)) was accepted")
                } catch let e as RPCError {
                    #expect(e.code == .invalidArgument)
                    #expect(e.message.contains(key), "\(e.message)")
                }
            }
        }
        world.assertNoLeaks()
    }

    /// The kubelet's request for every container: hugepage limits for every page size of the
    /// host, CPU shares, quota and period, a memory limit. runc failed it ("cannot set hugetlb
    /// limit") while crisp passed the hugepage limits on to a host without a hugetlb hierarchy.
    @Test func kubeletLimitsStartAContainer() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let pageSizes = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/mm/hugepages")) ?? [])
            .compactMap(Self.kubeletPageSize(directory:)).sorted()
        try await world.crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "limits", world: world)
            let id = try await Lifecycle.startContainer(runtime, pod: pod, "limited", ["/bin/sleep", "3600"]) {
                $0.linux.resources.cpuShares = 102
                $0.linux.resources.cpuQuota = 20000
                $0.linux.resources.cpuPeriod = 100000
                $0.linux.resources.memoryLimitInBytes = 64 << 20
                $0.linux.resources.hugepageLimits = pageSizes.map { size in
                    var h = Runtime_V1_HugepageLimit()
                    h.pageSize = size
                    h.limit = 0
                    return h
                }
            }
            let status = try await Lifecycle.status(runtime, id)
            #expect(status.state == .containerRunning)
            #expect(try await Lifecycle.exec(runtime, id, "echo up").out == "up")
            let applied = status.resources.linux
            #expect(applied.cpuShares == 102 && applied.cpuQuota == 20000 && applied.cpuPeriod == 100000)
            #expect(applied.memoryLimitInBytes == 64 << 20)
            // Reported as applied: without a v1 hugetlb hierarchy (this host), none were.
            let hugetlb = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes")
                || ((readSmallFile("/sys/fs/cgroup/cgroup.controllers") ?? "").contains("hugetlb"))
            #expect(applied.hugepageLimits.map(\.pageSize).sorted() == (hugetlb ? pageSizes : []))
            let cgroup = world.cgroupParent + "/crisp-" + id
            if FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory" + cgroup) {
                #expect(readSmallFile("/sys/fs/cgroup/memory\(cgroup)/memory.limit_in_bytes") == "\(64 << 20)\n")
                #expect(readSmallFile("/sys/fs/cgroup/cpu\(cgroup)/cpu.shares") == "102\n")
                #expect(readSmallFile("/sys/fs/cgroup/cpu\(cgroup)/cpu.cfs_quota_us") == "20000\n")
            }
            try await Lifecycle.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }
}
