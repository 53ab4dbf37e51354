import IntegrationSupport
import CRIAPI
import CrispCore
import CrispOCI
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import RegistryTestSupport
import Synchronization
import Testing

/// "kill -9 anywhere" (issue 16): a randomised workload of pulls, image removals and pod and
/// container lifecycles runs against crispd, which is SIGKILLed at a random moment; after each
/// restart the store check finds no damage, every RPC works, an interrupted pull succeeds on
/// retry, a container that was running still runs and answers exec, and no runc container or
/// conmon is left that crispd cannot account for. At the end everything is removed and nothing
/// may be left. `CRISP_STRESS=full` (make stress) runs 200 kills; otherwise 20 (inside make test).
@Suite(.serialized) struct StressKillTests {
    typealias Lifecycle = CRI
    typealias Client = CRI.Client

    static var kills: Int { ProcessInfo.processInfo.environment["CRISP_STRESS"] == "full" ? 200 : 20 }

    /// What the workload and the checks found, by cycle.
    final class Findings: Sendable {
        let problems = Mutex<[String]>([])
        let operations = Mutex(0)
        func add(_ p: String) { problems.withLock { $0.append(p) } }
        func count() { operations.withLock { $0 += 1 } }
    }

    /// Pods and containers made and unmade until crispd dies; where it stops is random.
    static func podWorkload(_ runtime: Client, world: CRIWorld, alive: @escaping @Sendable () -> Bool,
                            findings: Findings, seed: Int) async {
        var n = 0
        while alive() {
            n += 1
            do {
                // Every other loop runs its pods on the CNI bridge, so IPs are audited too.
                let pod = try await Lifecycle.runPod(runtime, "churn-\(seed)-\(n)", world: world) {
                    if seed % 2 == 1 { $0.linux.securityContext.namespaceOptions.network = .pod }
                }
                findings.count()
                let c = try await Lifecycle.startContainer(runtime, pod: pod, "c", ["/bin/sleep", "600"])
                findings.count()
                if Bool.random() { _ = try await Lifecycle.exec(runtime, c, "true") }
                if Bool.random() {
                    var stop = Runtime_V1_StopContainerRequest()
                    stop.containerID = c
                    _ = try await runtime.stopContainer(stop)
                }
                if Bool.random() { try await Lifecycle.removePod(runtime, pod.id) }
                findings.count()
            } catch let e as RPCError where e.code == .unavailable {
                return  // the kill
            } catch {
                if alive() { findings.add("workload: \(error)") }
                return
            }
        }
    }

    static func imageWorkload(_ images: Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix>, name: String,
                              alive: @escaping @Sendable () -> Bool, findings: Findings) async {
        while alive() {
            do {
                var pull = Runtime_V1_PullImageRequest()
                pull.image.image = name
                _ = try await images.pullImage(pull)
                findings.count()
                var remove = Runtime_V1_RemoveImageRequest()
                remove.image.image = name
                _ = try await images.removeImage(remove)
                findings.count()
            } catch let e as RPCError where e.code == .unavailable {
                return  // the kill
            } catch {
                if alive() { findings.add("image workload: \(error)") }
                return
            }
        }
    }

    /// Containers runc and conmon have under this crispd's directories that crispd does not list.
    static func unaccounted(_ crispd: CrispdProcess, listed: Set<String>) -> [String] {
        var out: [String] = []
        let runcRoot = crispd.dir + "/runc-root"
        for id in (try? FileManager.default.contentsOfDirectory(atPath: runcRoot)) ?? [] where !listed.contains(id) {
            out.append("runc container \(id)")
        }
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
            guard let cmd = readSmallFile("/proc/\(pid)/cmdline"), cmd.hasPrefix("/usr/bin/conmon"), cmd.contains(crispd.dir),
                  !(readSmallFile("/proc/\(pid)/stat")?.contains(") Z ") ?? true) else { continue }
            let args = cmd.split(separator: "\0").map(String.init)
            if let i = args.firstIndex(of: "-c"), i + 1 < args.count, !listed.contains(args[i + 1]) {
                out.append("conmon \(pid) for \(args[i + 1])")
            }
        }
        return out
    }

    /// IP addresses host-local holds for pods crispd does not list, and cgroups under the test's
    /// parent that belong to no listed pod or container.
    static func strayIPsAndCgroups(ipamDir: String, cgroupParent: String, listed: Set<String>) -> [String] {
        var out: [String] = []
        let network = ipamDir + "/crisp-stress"
        for ip in (try? FileManager.default.contentsOfDirectory(atPath: network)) ?? [] where ip.first?.isNumber == true {
            let owner = readSmallFile(network + "/" + ip)?.split(whereSeparator: \.isNewline).first.map(String.init) ?? "?"
            if !listed.contains(owner) { out.append("IP \(ip) held for \(owner), which crispd does not list") }
        }
        for group in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory" + cgroupParent)) ?? []
        where group.hasPrefix("crisp-") && !listed.contains(String(group.dropFirst(6))) {
            out.append("cgroup \(group) under \(cgroupParent)")
        }
        return out
    }

    @Test func killNineAnywhereLosesAndLeaksNothing() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        guard TestRegistry.available else { print("skipped: \(TestRegistry.binary) is not installed"); return }
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pusher = RegistryPusher(host: registry.host)
        do {
            _ = try await pusher.pushImage("stress/app", tag: "1", layers: [
                try FixtureLayer.busybox(), FixtureLayer([.file("etc/a", String(repeating: "a", count: 300_000))]),
                FixtureLayer([.file("etc/b", "b")]),
            ])
        } catch {
            try? await pusher.shutdown()
            throw error
        }
        try? await pusher.shutdown()
        let name = "\(registry.host)/stress/app:1"

        var crispd = try CrispdProcess()
        // Every generation stays referenced to the end: a CrispdProcess removes its directory
        // when it goes away, and the next generation runs in the same one.
        var generations = [crispd]
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        try "[[registry]]\nlocation = \"\(registry.host)\"\ninsecure = true\n"
            .write(toFile: crispd.dir + "/registries.conf", atomically: true, encoding: .utf8)
        let bridgeNumber = Int.random(in: 10...250)
        let bridge = "crik\(bridgeNumber)"
        let ipamDir = crispd.dir + "/ipam"
        try """
            {"cniVersion": "1.0.0", "name": "crisp-stress", "plugins": [
              {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "dataDir": "\(ipamDir)", "ranges": [[{"subnet": "10.249.\(bridgeNumber).0/24"}]]}}]}
            """.write(toFile: crispd.networkDir + "/10-stress.conflist", atomically: true, encoding: .utf8)
        defer { PodNetworkTests.deleteBridge(bridge) }
        let extra = ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", "/usr/lib/cni"]
        try await crispd.start(extra: extra)
        var world = CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        defer { world.cleanup() }
        let findings = Findings()

        // A container that runs through every kill.
        let survivor = try await crispd.withClients { [world] runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "survivor", world: world)
            return try await Lifecycle.startContainer(runtime, pod: pod, "s", ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])
        }
        let started = ContinuousClock.now
        var cleanedUp = 0
        for cycle in 1...Self.kills {
            let current = crispd
            let alive: @Sendable () -> Bool = { current.isRunning }
            try await current.withClients { [world] runtime, images in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await Self.podWorkload(runtime, world: world, alive: alive, findings: findings, seed: cycle) }
                    group.addTask { await Self.podWorkload(runtime, world: world, alive: alive, findings: findings, seed: cycle + 10_000) }
                    group.addTask { await Self.imageWorkload(images, name: name, alive: alive, findings: findings) }
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 100...1500)))
                        _ = current.signal(SIGKILL)
                    }
                }
            }
            _ = current.signal(SIGKILL)  // waits for the exit (the killer may not have fired yet)
            crispd = try CrispdProcess(dir: current.dir)
            generations.append(crispd)
            try await crispd.start(extra: extra)
            // crispd logs at start-up what an interrupted create or run had left and it removed.
            cleanedUp += crispd.log.components(separatedBy: "removed what an interrupted").count - 1
            world = CRIWorld(crispd: crispd, cgroupParent: world.cgroupParent)

            let cgroupParent = world.cgroupParent
            try await crispd.withClients { [crispd] runtime, images in
                let report = try await crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
                for f in report.findings where f.severity == "error" { findings.add("cycle \(cycle): store: \(f.subject): \(f.problem)") }
                let containers = try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers
                for c in containers { _ = try await Lifecycle.status(runtime, c.id) }
                _ = try await images.listImages(Runtime_V1_ListImagesRequest())
                for leak in Self.unaccounted(crispd, listed: Set(containers.map(\.id))) { findings.add("cycle \(cycle): \(leak)") }
                let pods = try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items
                for leak in Self.strayIPsAndCgroups(ipamDir: ipamDir, cgroupParent: cgroupParent,
                                                    listed: Set(containers.map(\.id) + pods.map(\.id))) {
                    findings.add("cycle \(cycle): \(leak)")
                }
                if try await Lifecycle.status(runtime, survivor).state != .containerRunning {
                    findings.add("cycle \(cycle): the survivor container is not running")
                } else if try await Lifecycle.exec(runtime, survivor, "echo alive").out != "alive" {
                    findings.add("cycle \(cycle): exec into the survivor failed")
                }
                // An interrupted pull succeeds on retry.
                var pull = Runtime_V1_PullImageRequest()
                pull.image.image = name
                _ = try await images.pullImage(pull)
            }
        }
        let elapsed = ContinuousClock.now - started

        // Everything removed through the CRI leaves nothing behind.
        try await crispd.withClients { [crispd] runtime, images in
            for pod in try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items {
                try await Lifecycle.removePod(runtime, pod.id)
            }
            var remove = Runtime_V1_RemoveImageRequest()
            remove.image.image = name
            _ = try await images.removeImage(remove)
            let report = try await crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            #expect(report.findings.filter { $0.severity == "error" }.isEmpty, "\(report.findings)")
            #expect(report.containers == 0, "storage containers left without a pod: \(report.containers)")
        }
        world.assertNoLeaks()
        let ipsLeft = Self.strayIPsAndCgroups(ipamDir: ipamDir, cgroupParent: world.cgroupParent, listed: [])
        #expect(ipsLeft.isEmpty, "left after removing everything: \(ipsLeft)")
        _ = generations
        let problems = findings.problems.withLock { $0 }
        print("stress kill-9: \(Self.kills) kills, \(findings.operations.withLock { $0 }) operations, "
              + "\(cleanedUp) interrupted creates/runs cleaned up at start, \(problems.count) problems, \(elapsed)")
        #expect(problems.isEmpty, "\(problems.prefix(20))")
    }
}
