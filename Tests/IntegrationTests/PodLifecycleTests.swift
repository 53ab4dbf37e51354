import IntegrationSupport
import CRIAPI
import CrispOS
import CrispRuntime
import CrispTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Testing

/// Pods and containers through a real crispd, conmon and runc: namespaces pinned without an
/// infra container, the shared PID namespace, events, pod stats, devices, OOM, recovery after
/// SIGKILL, and many pods at once.
@Suite(.serialized) struct PodLifecycleTests {
    typealias Client = CRI.Client

    @Test func namespacesArePinnedWithoutInfraAndPIDIsSharedOnlyWhenAsked() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        let got = try await world.crispd.withClients { runtime, _ in
            // The kubelet's evented PLEG: one stream for the whole test.
            let events = try await EventRecorder.start(runtime)
            defer { events.stop() }

            let plain = try await CRI.runPod(runtime, "plain", world: world)
            var verbose = Runtime_V1_PodSandboxStatusRequest()
            verbose.podSandboxID = plain.id
            verbose.verbose = true
            let info = try await runtime.podSandboxStatus(verbose).info["info"] ?? ""
            #expect(info.contains("\"infraContainer\":false"), "\(info)")
            #expect(FileManager.default.fileExists(atPath: "/var/run/ipcns/crisp-" + plain.id))
            #expect(CRI.conmonCount(mentioning: plain.id) == 0, "a pod without a shared PID namespace has no infra conmon")

            let a = try await CRI.startContainer(runtime, pod: plain, "a", ["/bin/sleep", "600"])
            let b = try await CRI.startContainer(runtime, pod: plain, "b", ["/bin/sleep", "600"]) {
                $0.devices = [{ var d = Runtime_V1_Device(); d.hostPath = "/dev/zero"; d.containerPath = "/dev/crisp-zero"; d.permissions = "rwm"; return d }()]
            }
            let ipcA = try await CRI.exec(runtime, a, "ls -l /proc/self/ns/ipc")
            let ipcB = try await CRI.exec(runtime, b, "ls -l /proc/self/ns/ipc")
            let hostIPC = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/ipc")) ?? "?"
            #expect(ipcA.out.hasSuffix(ipcB.out.split(separator: " ").last.map(String.init) ?? "-"), "containers of one pod share IPC: \(ipcA.out) vs \(ipcB.out)")
            #expect(!ipcA.out.hasSuffix(hostIPC), "the pod's IPC namespace is its own")
            // PID namespace per container: each sees only itself (pid 1 is its own sleep).
            #expect(try await CRI.exec(runtime, a, "ps -o comm | grep -c sleep").out == "1")
            // A device given by the request is there, as a character device.
            #expect(try await CRI.exec(runtime, b, "[ -c /dev/crisp-zero ] && echo yes").out == "yes")

            var podStats = Runtime_V1_PodSandboxStatsRequest()
            podStats.podSandboxID = plain.id
            let stats = try await runtime.podSandboxStats(podStats).stats
            #expect(stats.attributes.id == plain.id)
            #expect(stats.linux.process.processCount.value >= 2)
            #expect(stats.linux.memory.workingSetBytes.value > 0)
            #expect(stats.linux.cpu.usageCoreNanoSeconds.value > 0)
            #expect(Set(stats.linux.containers.map(\.attributes.id)) == [a, b])

            let shared = try await CRI.runPod(runtime, "shared", world: world, sharedPID: true)
            verbose.podSandboxID = shared.id
            #expect((try await runtime.podSandboxStatus(verbose).info["info"] ?? "").contains("\"infraContainer\":true"))
            #expect(CRI.conmonCount(mentioning: shared.id) == 1, "the shared PID namespace is held by an infra container")
            let c = try await CRI.startContainer(runtime, pod: shared, "c", ["/bin/sleep", "600"])
            let d = try await CRI.startContainer(runtime, pod: shared, "d", ["/bin/sleep", "601"])
            let seen = try await CRI.exec(runtime, d, "ps -o args")
            #expect(seen.out.contains("sleep 600") && seen.out.contains("pause"), "a shared-PID pod sees its siblings: \(seen.out)")
            _ = c

            var list = Runtime_V1_ListPodSandboxStatsRequest()
            #expect(Set(try await runtime.listPodSandboxStats(list).stats.map(\.attributes.id)) == [plain.id, shared.id])
            list.filter.id = shared.id
            #expect(try await runtime.listPodSandboxStats(list).stats.map(\.attributes.id) == [shared.id])

            try await CRI.removePod(runtime, plain.id)
            try await CRI.removePod(runtime, shared.id)
            #expect(!FileManager.default.fileExists(atPath: "/var/run/ipcns/crisp-" + plain.id))

            _ = await events.wait(within: .seconds(5)) { $0.contains { $0.containerID == shared.id && $0.containerEventType == .containerDeletedEvent } }
            return events.items
        }
        func kinds(_ id: String) -> [Runtime_V1_ContainerEventType] { got.filter { $0.containerID == id }.map(\.containerEventType) }
        let life: [Runtime_V1_ContainerEventType] = [.containerCreatedEvent, .containerStartedEvent, .containerStoppedEvent, .containerDeletedEvent]
        #expect(kinds(plain0(got)) == life, "pod events: \(got.map { ($0.containerID.prefix(8), $0.containerEventType) })")
        let created = got.first { $0.containerEventType == .containerStartedEvent && !$0.containersStatuses.isEmpty }
        #expect(created?.podSandboxStatus.id.isEmpty == false, "container events carry the pod's status")
        for e in got where e.containerEventType == .containerCreatedEvent && e.podSandboxStatus.id != e.containerID {
            #expect(kinds(e.containerID) == life, "container \(e.containerID.prefix(12)): \(kinds(e.containerID))")
        }
        world.assertNoLeaks()
    }

    /// The first pod in the stream.
    func plain0(_ events: [Runtime_V1_ContainerEventResponse]) -> String {
        events.first { $0.podSandboxStatus.id == $0.containerID }?.containerID ?? "none"
    }

    @Test func memoryLimitKillsWithOOMKilled() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "oom", world: world)
            let hog = try await CRI.startContainer(runtime, pod: pod, "hog", ["/bin/sh", "-c", "x=0123456789; while true; do x=$x$x; done"]) {
                $0.linux.resources.memoryLimitInBytes = 20 << 20
                if FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") {
                    $0.linux.resources.memorySwapLimitInBytes = 20 << 20
                }
            }
            let s = try await CRI.waitExited(runtime, hog, within: .seconds(60))
            #expect(s.state == .containerExited)
            #expect(s.reason == "OOMKilled", "reason \(s.reason), exit \(s.exitCode)")
            #expect(s.exitCode == 137)
            try await CRI.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }

    @Test func restartKeepsRunningContainersAndReportsExitsThatHappenedWhileDown() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        let gateDirectory = world.crispd.dir + "/gate"
        try FileManager.default.createDirectory(atPath: gateDirectory, withIntermediateDirectories: true)
        let (pod, running, early, late) = try await world.crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "survivor", world: world)
            var running: [String] = []
            for name in ["r1", "r2"] {
                running.append(try await CRI.startContainer(runtime, pod: pod, name, ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]))
            }
            let early = try await CRI.startContainer(runtime, pod: pod, "early", ["/bin/sh", "-c", "exit 3"])
            #expect(try await CRI.waitExited(runtime, early).exitCode == 3)
            // Running at the crash, exits while crispd is down: it waits for a gate the test opens
            // only after the kill (a fixed sleep lost to a slow client teardown under CI's load).
            var gate = Runtime_V1_Mount()
            gate.hostPath = gateDirectory
            gate.containerPath = "/gate"
            let late = try await CRI.startContainer(runtime, pod: pod, "late",
                                                    ["/bin/sh", "-c", "while [ ! -e /gate/open ]; do sleep 0.05; done; exit 5"]) {
                $0.mounts = [gate]
            }
            return (pod, running, early, late)
        }
        let crashedAt = Int64(Date().timeIntervalSince1970 * 1e9)
        #expect(world.crispd.signal(SIGKILL) != 0)
        #expect(FileManager.default.createFile(atPath: gateDirectory + "/open", contents: nil))
        // conmon, which outlives crispd, writes the exit file when `late` exits.
        #expect(try await FileAppearance.wait(for: world.crispd.runRoot + "/exits/" + late, timeout: .seconds(20)))
        let again = try await world.restart()
        try await again.withClients { runtime, _ in
            for id in running {
                let s = try await CRI.status(runtime, id)
                #expect(s.state == .containerRunning, "\(id) should still run")
                #expect(try await CRI.exec(runtime, id, "echo alive").out == "alive")
            }
            let e = try await CRI.status(runtime, early)
            #expect(e.state == .containerExited && e.exitCode == 3 && e.reason == "Error")
            let l = try await CRI.waitExited(runtime, late, within: .seconds(5))
            #expect(l.state == .containerExited)
            #expect(l.exitCode == 5)
            #expect(l.finishedAt > crashedAt, "the exit time is when it happened, while crispd was down")
            var list = Runtime_V1_ListPodSandboxRequest()
            list.filter.id = pod.id
            #expect(try await runtime.listPodSandbox(list).items.first?.state == .sandboxReady)
            var stop = Runtime_V1_StopContainerRequest()
            stop.containerID = running[0]
            stop.timeout = 5
            _ = try await runtime.stopContainer(stop)
            #expect(try await CRI.status(runtime, running[0]).exitCode == 0)
            try await CRI.removePod(runtime, pod.id)
            #expect(try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers.isEmpty)
        }
        CRIWorld(crispd: again, cgroupParent: world.cgroupParent).assertNoLeaks()
        again.signal(SIGTERM)
    }

    @Test func twentyPodsInParallel() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let made = try await withThrowingTaskGroup(of: (String, String).self) { group in
                for i in 0..<20 {
                    group.addTask {
                        let pod = try await CRI.runPod(runtime, "par\(i)", world: world, sharedPID: i % 4 == 0)
                        let c = try await CRI.startContainer(runtime, pod: pod, "c", ["/bin/sleep", "600"])
                        return (pod.id, c)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(made.map(\.0)).count == 20)
            var pods = Runtime_V1_ListPodSandboxRequest()
            pods.filter.state.state = .sandboxReady
            #expect(try await runtime.listPodSandbox(pods).items.count == 20)
            var running = Runtime_V1_ListContainersRequest()
            running.filter.state.state = .containerRunning
            #expect(try await runtime.listContainers(running).containers.count == 20)
            // The streaming twins of the List RPCs give the same items.
            let streamedPods = try await runtime.streamPodSandboxes(Runtime_V1_StreamPodSandboxesRequest()) { response in
                try await response.messages.reduce(0) { $0 + $1.podSandboxes.count }
            }
            #expect(streamedPods == 20)
            var streamContainers = Runtime_V1_StreamContainersRequest()
            streamContainers.filter.state.state = .containerRunning
            let streamedContainers = try await runtime.streamContainers(streamContainers) { response in
                try await response.messages.reduce(0) { $0 + $1.containers.count }
            }
            #expect(streamedContainers == 20)
            let streamedStats = try await runtime.streamPodSandboxStats(Runtime_V1_StreamPodSandboxStatsRequest()) { response in
                try await response.messages.reduce(0) { $0 + $1.podSandboxStats.count }
            }
            #expect(streamedStats == 20)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (pod, _) in made { group.addTask { try await CRI.removePod(runtime, pod) } }
                try await group.waitForAll()
            }
            #expect(try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items.isEmpty)
        }
        world.assertNoLeaks()
    }
}
