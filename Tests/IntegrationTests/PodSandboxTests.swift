import IntegrationSupport
import CRIAPI
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import Testing

/// Pods through a real crispd, conmon and runc. Host-network pods only until CNI is wired in.
@Suite(.serialized) struct PodSandboxTests {
    @Test func hostNetworkPodLifecycle() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRIWorld()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("web", cgroupParent: world.cgroupParent, labels: ["app": "web"])
            let id = try await runtime.runPodSandbox(run).podSandboxID
            #expect(id.count == 64)

            var statusReq = Runtime_V1_PodSandboxStatusRequest()
            statusReq.podSandboxID = String(id.prefix(12))
            statusReq.verbose = true
            let st = try await runtime.podSandboxStatus(statusReq)
            #expect(st.status.id == id)
            #expect(st.status.state == .sandboxReady)
            #expect(st.status.metadata.name == "web")
            // In-place resize notice: accepted for a pod that exists, NotFound for one that does not.
            var resize = Runtime_V1_UpdatePodSandboxResourcesRequest()
            resize.podSandboxID = id
            resize.resources.memoryLimitInBytes = 64 << 20
            _ = try await runtime.updatePodSandboxResources(resize)
            resize.podSandboxID = String(repeating: "f", count: 64)
            do {
                _ = try await runtime.updatePodSandboxResources(resize)
                Issue.record("a resize of an unknown pod was accepted")
            } catch let e as RPCError {
                #expect(e.code == .notFound)
            }
            #expect(st.status.labels == ["app": "web"])
            #expect(st.status.linux.namespaces.options.network == .node)
            #expect(st.status.runtimeHandler == "runc")
            #expect(st.status.createdAt > 0)
            let info = st.info["info"] ?? ""
            let pid = (try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])?["pid"] as? Int ?? 0
            #expect(pid > 0)
            // `runc start` returns once it has told the container to exec, maybe just before it has.
            let execDeadline = ContinuousClock.now + .seconds(5)
            while readSmallFile("/proc/\(pid)/cmdline")?.hasPrefix("/pause") != true,
                  ContinuousClock.now < execDeadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(readSmallFile("/proc/\(pid)/cmdline")?.hasPrefix("/pause") == true)
            let runDir = world.crispd.runRoot + "/sandboxes/" + id
            #expect(try String(contentsOfFile: runDir + "/resolv.conf", encoding: .utf8) == "search example.test\nnameserver 127.0.0.53\n")
            #expect(try String(contentsOfFile: runDir + "/hostname", encoding: .utf8) == "web\n")

            var list = Runtime_V1_ListPodSandboxRequest()
            #expect(try await runtime.listPodSandbox(list).items.map(\.id) == [id])
            list.filter.labelSelector = ["app": "db"]
            #expect(try await runtime.listPodSandbox(list).items.isEmpty)
            list.filter.labelSelector = ["app": "web"]
            list.filter.id = String(id.prefix(6))
            #expect(try await runtime.listPodSandbox(list).items.count == 1)

            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = id
            _ = try await runtime.stopPodSandbox(stop)
            _ = try await runtime.stopPodSandbox(stop) // idempotent
            statusReq.verbose = false
            #expect(try await runtime.podSandboxStatus(statusReq).status.state == .sandboxNotready)
            #expect(kill(Int32(pid), 0) != 0 || (readSmallFile("/proc/\(pid)/stat")?.contains(") Z ") ?? true))
            list.filter = Runtime_V1_PodSandboxFilter()
            list.filter.state.state = .sandboxReady
            #expect(try await runtime.listPodSandbox(list).items.isEmpty)

            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
            _ = try await runtime.removePodSandbox(remove) // unknown id succeeds
            do {
                _ = try await runtime.podSandboxStatus(statusReq)
                Issue.record("status of a removed pod succeeded")
            } catch let e as RPCError {
                #expect(e.code == .notFound)
            }
            #expect(!FileManager.default.fileExists(atPath: runDir))
        }
        world.assertNoLeaks()
    }

    @Test func badRequestsAreRefusedAndLeaveNothing() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRIWorld()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("a", cgroupParent: world.cgroupParent)
            let id = try await runtime.runPodSandbox(run).podSandboxID
            do {
                _ = try await runtime.runPodSandbox(run)
                Issue.record("second pod with the same metadata was created")
            } catch let e as RPCError {
                #expect(e.code == .alreadyExists)
                #expect(e.message.contains(id))
            }
            var other = run
            other.config = CRI.podConfig("b", cgroupParent: world.cgroupParent, hostNetwork: false)
            do {
                _ = try await runtime.runPodSandbox(other)
                Issue.record("pod-network pod was created")
            } catch let e as RPCError {
                #expect(e.code == .failedPrecondition)
                #expect(e.message.contains("CNI"))
            }
            other.config = CRI.podConfig("c", cgroupParent: world.cgroupParent)
            other.runtimeHandler = "kata"
            do {
                _ = try await runtime.runPodSandbox(other)
                Issue.record("unknown handler accepted")
            } catch let e as RPCError {
                #expect(e.code == .invalidArgument)
                #expect(e.message.contains("kata"))
            }
            other.config.metadata.name = ""
            other.runtimeHandler = ""
            do {
                _ = try await runtime.runPodSandbox(other)
                Issue.record("pod without a name accepted")
            } catch let e as RPCError {
                #expect(e.code == .invalidArgument)
            }
            let dirs = try FileManager.default.contentsOfDirectory(atPath: world.crispd.runRoot + "/sandboxes")
            #expect(dirs == [id])
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
        }
        world.assertNoLeaks()
    }

    @Test func podsSurviveADaemonCrash() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRIWorld()
        defer { world.cleanup() }
        let ids: [String] = try await world.crispd.withClients { runtime, _ in
            var out: [String] = []
            for name in ["p1", "p2"] {
                var run = Runtime_V1_RunPodSandboxRequest()
                run.config = CRI.podConfig(name, cgroupParent: world.cgroupParent)
                out.append(try await runtime.runPodSandbox(run).podSandboxID)
            }
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = out[1]
            _ = try await runtime.stopPodSandbox(stop)
            return out
        }
        #expect(world.crispd.signal(SIGKILL) != 0)
        let again = try await world.restart()
        defer { again.signal(SIGTERM) }
        try await again.withClients { runtime, _ in
            let items = try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items
            let states = Dictionary(uniqueKeysWithValues: items.map { ($0.id, $0.state) })
            #expect(states[ids[0]] == .sandboxReady)
            #expect(states[ids[1]] == .sandboxNotready)
            // The same metadata is still reserved after the restart.
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("p1", cgroupParent: world.cgroupParent)
            await #expect(throws: RPCError.self) { _ = try await runtime.runPodSandbox(run) }
            for id in ids {
                var remove = Runtime_V1_RemovePodSandboxRequest()
                remove.podSandboxID = id
                _ = try await runtime.removePodSandbox(remove)
            }
            #expect(try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items.isEmpty)
        }
        world.assertNoLeaks()
    }
}

extension CRIWorld {
    /// Everything the pods made is gone: mounts, conmon processes, namespace pins, cgroups.
    func assertNoLeaks(sourceLocation: SourceLocation = #_sourceLocation) {
        let found = leaks()
        #expect(found.isEmpty, "\(found.joined(separator: "; "))", sourceLocation: sourceLocation)
    }
}
