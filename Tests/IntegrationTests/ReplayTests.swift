import IntegrationSupport
import CRIAPI
import CrispCore
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Testing

/// A client that replays an RPC (grpc-go does after a GOAWAY that names too low a stream) sends
/// a twin while the first is still running. Each create must happen once; the twins answer
/// AlreadyExists naming the first's result, and a twin StartContainer never reaches runc.
@Suite(.serialized) struct ReplayTests {
    typealias Client = CRI.Client

    static func concurrently(_ n: Int, _ body: @escaping @Sendable () async throws -> String) async -> [Result<String, any Error>] {
        await withTaskGroup(of: Result<String, any Error>.self) { group in
            for _ in 0..<n { group.addTask { await Result(catching: { try await body() }) } }
            var out: [Result<String, any Error>] = []
            for await r in group { out.append(r) }
            return out
        }
    }

    static func split(_ results: [Result<String, any Error>]) -> (ok: [String], codes: [RPCError.Code], messages: [String]) {
        var ok: [String] = [], codes: [RPCError.Code] = [], messages: [String] = []
        for r in results {
            switch r {
            case .success(let id): ok.append(id)
            case .failure(let e):
                codes.append((e as? RPCError)?.code ?? .unknown)
                messages.append((e as? RPCError)?.message ?? "\(e)")
            }
        }
        return (ok, codes, messages)
    }

    @Test func twinsOfRunPodSandboxCreateContainerAndStartContainerRunOnce() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("twins", cgroupParent: world.cgroupParent)
            run.config.linux.securityContext.namespaceOptions.pid = .container
            let pods = Self.split(await Self.concurrently(4) { [run] in try await runtime.runPodSandbox(run).podSandboxID })
            let pod = try #require(pods.ok.first, "no RunPodSandbox succeeded: \(pods.messages)")
            #expect(pods.ok.count == 1)
            #expect(pods.codes == [.alreadyExists, .alreadyExists, .alreadyExists])
            #expect(pods.messages.allSatisfy { $0.contains(pod) }, "\(pods.messages)")
            #expect(try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items.count == 1)

            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = pod
            create.sandboxConfig = run.config
            create.config = CRI.containerConfig("c", ["/bin/sleep", "600"], logPath: "c.log")
            let created = Self.split(await Self.concurrently(4) { [create] in try await runtime.createContainer(create).containerID })
            let container = try #require(created.ok.first, "no CreateContainer succeeded: \(created.messages)")
            #expect(created.ok.count == 1)
            #expect(created.codes == [.alreadyExists, .alreadyExists, .alreadyExists])
            #expect(created.messages.allSatisfy { $0.contains(container) }, "\(created.messages)")
            #expect(try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers.count == 1)

            var start = Runtime_V1_StartContainerRequest()
            start.containerID = container
            let started = Self.split(await Self.concurrently(4) { [start] in
                _ = try await runtime.startContainer(start)
                return container
            })
            #expect(started.ok.count == 1, "\(started.messages)")
            #expect(started.codes == [.failedPrecondition, .failedPrecondition, .failedPrecondition], "\(started.messages)")
            #expect(!started.messages.joined().contains("already running"), "a twin reached runc: \(started.messages)")
            #expect(try await CRI.status(runtime, container).state == .containerRunning)

            // Stop and remove twins are idempotent: every one succeeds and the pod is gone once.
            let stops = Self.split(await Self.concurrently(3) {
                var stop = Runtime_V1_StopPodSandboxRequest()
                stop.podSandboxID = pod
                _ = try await runtime.stopPodSandbox(stop)
                return pod
            })
            #expect(stops.ok.count == 3, "\(stops.messages)")
            let removes = Self.split(await Self.concurrently(3) {
                var remove = Runtime_V1_RemovePodSandboxRequest()
                remove.podSandboxID = pod
                _ = try await runtime.removePodSandbox(remove)
                return pod
            })
            #expect(removes.ok.count == 3, "\(removes.messages)")
            #expect(try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items.isEmpty)
            #expect(try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers.isEmpty)
        }
        world.assertNoLeaks()
    }
}
