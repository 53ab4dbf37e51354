import IntegrationSupport
import CRIAPI
import CrispOS
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Testing

/// Load (issue 16): many pods on the CNI bridge at once, then many create/remove cycles in a
/// row, with nothing leaked and the daemon not growing. Quick size in `make test`, full size
/// (100 pods with 2 containers each; 1,000 cycles) in `make stress`.
@Suite(.serialized) struct StressLoadTests {
    typealias Lifecycle = CRI
    typealias Client = CRI.Client

    /// A crispd with busybox, runc state in the test directory and its own CNI bridge and IPAM.
    struct NetworkWorld {
        let world: CRIWorld
        let bridge: String
        let ipamDir: String

        init() async throws {
            let crispd = try CrispdProcess()
            let n = Int.random(in: 10...250)
            bridge = "cris\(n)"
            ipamDir = crispd.dir + "/ipam"
            try """
                {"cniVersion": "1.0.0", "name": "crisp-stress", "plugins": [
                  {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
                   "ipam": {"type": "host-local", "dataDir": "\(ipamDir)", "ranges": [[{"subnet": "10.251.\(n).0/24"}]]}}]}
                """.write(toFile: crispd.networkDir + "/10-stress.conflist", atomically: true, encoding: .utf8)
            try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
            try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", "/usr/lib/cni"])
            world = CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        }

        /// Addresses host-local still holds for pods.
        var allocatedIPs: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: ipamDir + "/crisp-stress")) ?? [])
                .filter { $0.first?.isNumber == true }
        }

        func cleanup() {
            world.cleanup()
            PodNetworkTests.deleteBridge(bridge)
        }

        /// Nothing of any pod is left: the world's leak checks, IPs, storage containers, bundles.
        func assertNothingLeft() async throws {
            world.assertNoLeaks()
            #expect(allocatedIPs.isEmpty, "IPs still allocated: \(allocatedIPs)")
            let netns = ((try? FileManager.default.contentsOfDirectory(atPath: "/var/run/netns")) ?? [])
                .filter { name in world.podIDs.contains { name == "crisp-" + $0 } }
            #expect(netns.isEmpty, "network namespaces left: \(netns)")
            let report = try await world.crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            #expect(report.containers == 0, "storage containers left: \(report.containers)")
            #expect(report.findings.filter { $0.severity == "error" }.isEmpty, "\(report.findings)")
            let bundles = (try? FileManager.default.contentsOfDirectory(atPath: world.crispd.runRoot + "/sandboxes")) ?? []
            #expect(bundles.isEmpty, "pod run directories left: \(bundles)")
        }
    }

    static func podName(_ prefix: String, _ i: Int) -> String { "\(prefix)\(i)" }

    @Test func manyPodsWithTwoContainersAtOnce() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        let pods = StressSize.pick(quick: 20, full: 100)
        let net = try await NetworkWorld()
        defer { net.cleanup() }
        let timings = RPCTimings()
        let started = ContinuousClock.now
        try await net.world.crispd.withClients { [world = net.world] runtime, _ in
            let made = try await withThrowingTaskGroup(of: (id: String, ip: String).self) { group in
                for i in 0..<pods {
                    group.addTask {
                        var run = Runtime_V1_RunPodSandboxRequest()
                        run.config = CRI.podConfig(Self.podName("load", i), cgroupParent: world.cgroupParent, hostNetwork: false)
                        run.config.logDirectory = world.crispd.dir + "/pod-logs/load\(i)"
                        run.config.linux.securityContext.namespaceOptions.pid = .container
                        let id = try await timings.time("RunPodSandbox") { try await runtime.runPodSandbox(run).podSandboxID }
                        var status = Runtime_V1_PodSandboxStatusRequest()
                        status.podSandboxID = id
                        let ip = try await timings.time("PodSandboxStatus") { try await runtime.podSandboxStatus(status).status.network.ip }
                        for name in ["a", "b"] {
                            var create = Runtime_V1_CreateContainerRequest()
                            create.podSandboxID = id
                            create.sandboxConfig = run.config
                            create.config = CRI.containerConfig(name, ["/bin/sleep", "600"], logPath: name + ".log")
                            let c = try await timings.time("CreateContainer") { try await runtime.createContainer(create).containerID }
                            var start = Runtime_V1_StartContainerRequest()
                            start.containerID = c
                            _ = try await timings.time("StartContainer") { try await runtime.startContainer(start) }
                        }
                        return (id, ip)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let ips = Set(made.map(\.ip))
            #expect(ips.count == pods, "distinct IPs: \(ips.count) for \(pods) pods")
            #expect(!ips.contains(""), "a pod has no IP")
            #expect(Set(net.allocatedIPs) == ips, "host-local holds \(net.allocatedIPs.count) addresses")
            var running = Runtime_V1_ListContainersRequest()
            running.filter.state.state = .containerRunning
            let listed = try await timings.time("ListContainers") { try await runtime.listContainers(running).containers }
            #expect(listed.count == 2 * pods)
            _ = try await timings.time("ListContainerStats") { try await runtime.listContainerStats(Runtime_V1_ListContainerStatsRequest()) }

            try await withThrowingTaskGroup(of: Void.self) { group in
                for pod in made {
                    group.addTask {
                        var stop = Runtime_V1_StopPodSandboxRequest()
                        stop.podSandboxID = pod.id
                        _ = try await timings.time("StopPodSandbox") { try await runtime.stopPodSandbox(stop) }
                        var remove = Runtime_V1_RemovePodSandboxRequest()
                        remove.podSandboxID = pod.id
                        _ = try await timings.time("RemovePodSandbox") { try await runtime.removePodSandbox(remove) }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items.isEmpty)
            #expect(try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers.isEmpty)
        }
        try await net.assertNothingLeft()
        print("stress load: \(pods) pods × 2 containers started and removed concurrently, \(timings.count) RPCs, "
              + "\(pods) distinct IPs, \(ContinuousClock.now - started)\n" + timings.table())
    }

    /// Pod create/remove cycles in a row: the daemon's memory, descriptors and threads are
    /// sampled every `every` cycles, after a warm-up, and must stay flat within the stated
    /// tolerance (RSS: +6 MB or +15 %, whichever is larger, for the allocator's slack; fds and
    /// threads: +4 for connections and pool threads in flight).
    @Test func podCyclesDoNotGrowTheDaemon() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        let cycles = StressSize.pick(quick: 60, full: 1000)
        let every = StressSize.pick(quick: 15, full: 100)
        let net = try await NetworkWorld()
        defer { net.cleanup() }
        let pid = net.world.crispd.processIdentifier
        let timings = RPCTimings()
        let started = ContinuousClock.now
        let samples: [ProcessSample] = try await net.world.crispd.withClients { [world = net.world] runtime, _ in
            var samples: [ProcessSample] = []
            for i in 1...cycles {
                var run = Runtime_V1_RunPodSandboxRequest()
                run.config = CRI.podConfig("cycle\(i)", cgroupParent: world.cgroupParent, hostNetwork: false)
                run.config.linux.securityContext.namespaceOptions.pid = .container
                let id = try await timings.time("RunPodSandbox") { try await runtime.runPodSandbox(run).podSandboxID }
                if i % 10 == 0 {
                    var create = Runtime_V1_CreateContainerRequest()
                    create.podSandboxID = id
                    create.sandboxConfig = run.config
                    create.config = CRI.containerConfig("c", ["/bin/true"], logPath: "c.log")
                    _ = try await timings.time("CreateContainer") { try await runtime.createContainer(create) }
                }
                var stop = Runtime_V1_StopPodSandboxRequest()
                stop.podSandboxID = id
                _ = try await timings.time("StopPodSandbox") { try await runtime.stopPodSandbox(stop) }
                var remove = Runtime_V1_RemovePodSandboxRequest()
                remove.podSandboxID = id
                _ = try await timings.time("RemovePodSandbox") { try await runtime.removePodSandbox(remove) }
                if i % every == 0, let s = ProcessSample(pid: pid) { samples.append(s) }
            }
            return samples
        }
        try await net.assertNothingLeft()
        print("stress cycles: \(cycles) pod create/remove cycles (a container in every 10th), crispd every \(every): "
              + samples.map(\.description).joined(separator: " → ") + ", \(ContinuousClock.now - started)\n" + timings.table())
        try #require(samples.count >= 3)
        let base = samples[1]  // after a warm-up
        for s in samples.dropFirst(2) {
            #expect(s.rssKB <= base.rssKB + max(6 * 1024, base.rssKB * 15 / 100), "RSS grew: \(base) → \(s)")
            #expect(s.fds <= base.fds + 4, "descriptors grew: \(base) → \(s)")
            #expect(s.threads <= base.threads + 4, "threads grew: \(base) → \(s)")
        }
    }
}
