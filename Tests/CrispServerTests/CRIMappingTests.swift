import CRIAPI
import CrispCore
import CrispService
import CrispTestSupport
import Foundation
import GRPCCore
import SwiftProtobuf
import Testing
@testable import CrispServer

/// The CRI edge against real services on a fake runtime: each RPC family's request becomes the
/// service call it should, its answer the CRI message it should, and service errors the gRPC
/// codes the kubelet acts on. No runc, conmon, mount or root.
@Suite struct CRIMappingTests {
    static func service(_ world: ServiceWorld) -> RuntimeService {
        RuntimeService(info: RuntimeInfoService(config: LiveConfiguration(world.config)), sandboxes: world.sandboxes,
                       containers: world.containers)
    }

    static func podConfig(_ world: ServiceWorld, name: String = "web") -> Runtime_V1_PodSandboxConfig {
        .with {
            $0.metadata = .with { m in m.name = name; m.uid = "uid-" + name; m.namespace = "default"; m.attempt = 1 }
            $0.hostname = name
            $0.logDirectory = world.tmp.sub("logs/" + name)
            $0.labels = ["app": name]
            $0.annotations = ["note": "kept"]
            $0.linux.securityContext.namespaceOptions.network = .node
            $0.linux.securityContext.namespaceOptions.pid = .container
        }
    }

    static func containerConfig(_ name: String = "app", labels: [String: String] = [:]) -> Runtime_V1_ContainerConfig {
        .with {
            $0.metadata = .with { m in m.name = name; m.attempt = 2 }
            $0.image = .with { i in i.image = ServiceWorld.image }
            $0.command = ["/app", "serve"]
            $0.logPath = name + ".log"
            $0.labels = labels
        }
    }

    /// The gRPC code a client would get for what `body` throws.
    static func code(_ method: String, _ body: () async throws -> Void) async -> RPCError.Code? {
        do { try await body() } catch { return ErrorMappingInterceptor.rpcError(from: error, method: method).code }
        return nil
    }

    @Test func podSandboxFamily() async throws {
        try await ServiceWorld.with { world in
            let cri = Self.service(world)
            let config = Self.podConfig(world)
            let id = try await cri.runPodSandbox(.with { $0.config = config }).podSandboxID
            let status = try await cri.podSandboxStatus(.with { $0.podSandboxID = id }).status
            #expect(status.id == id)
            #expect(status.metadata == config.metadata)
            #expect(status.state == .sandboxReady)
            #expect(status.labels == ["app": "web"] && status.annotations == ["note": "kept"])
            #expect(status.linux.namespaces.options.network == .node)
            #expect(status.createdAt > 0)
            // A prefix of the id finds the pod too.
            #expect(try await cri.podSandboxStatus(.with { $0.podSandboxID = String(id.prefix(12)) }).status.id == id)

            let listed = try await cri.listPodSandbox(.with { $0.filter.labelSelector = ["app": "web"] }).items
            #expect(listed.map(\.id) == [id])
            #expect(try await cri.listPodSandbox(.with { $0.filter.labelSelector = ["app": "other"] }).items.isEmpty)

            #expect(await Self.code("RunPodSandbox") { _ = try await cri.runPodSandbox(.with { $0.config = config }) } == .alreadyExists)
            #expect(await Self.code("RunPodSandbox") { _ = try await cri.runPodSandbox(.init()) } == .invalidArgument)
            #expect(await Self.code("PodSandboxStatus") { _ = try await cri.podSandboxStatus(.with { $0.podSandboxID = "feedface" }) } == .notFound)

            _ = try await cri.stopPodSandbox(.with { $0.podSandboxID = id })
            #expect(try await cri.podSandboxStatus(.with { $0.podSandboxID = id }).status.state == .sandboxNotready)
            #expect(try await cri.listPodSandbox(.with { $0.filter.state.state = .sandboxReady }).items.isEmpty)
            for _ in 0..<2 { _ = try await cri.removePodSandbox(.with { $0.podSandboxID = id }) }
            #expect(try await cri.listPodSandbox(.init()).items.isEmpty)
            // Stop and remove of an unknown pod succeed: the kubelet retries them.
            _ = try await cri.stopPodSandbox(.with { $0.podSandboxID = id })
        }
    }

    /// A teardown that fails is Internal, never the NotFound the kubelet takes for "gone".
    @Test func aFailedPodStopIsInternalAndTheNetworkStays() async throws {
        try await ServiceWorld.with { world in
            let cri = Self.service(world)
            var config = Self.podConfig(world, name: "net")
            config.linux.securityContext.namespaceOptions.network = .pod
            let id = try await cri.runPodSandbox(.with { $0.config = config }).podSandboxID
            let status = try await cri.podSandboxStatus(.with { $0.podSandboxID = id }).status
            #expect(status.network.ip == "10.88.0.2")
            world.cni.removePlugin("fakebridge")
            #expect(await Self.code("StopPodSandbox") { _ = try await cri.stopPodSandbox(.with { $0.podSandboxID = id }) } == .internalError)
            #expect(try await cri.podSandboxStatus(.with { $0.podSandboxID = id }).status.network.ip == "10.88.0.2")
            world.cni.setPlugin("fakebridge", ServiceWorld.bridge())
            _ = try await cri.stopPodSandbox(.with { $0.podSandboxID = id })
            _ = try await cri.removePodSandbox(.with { $0.podSandboxID = id })
            #expect(world.netns.live.isEmpty)
        }
    }

    @Test func containerFamily() async throws {
        try await ServiceWorld.with { world in
            let cri = Self.service(world)
            let podConfig = Self.podConfig(world)
            let pod = try await cri.runPodSandbox(.with { $0.config = podConfig }).podSandboxID
            let config = Self.containerConfig(labels: ["tier": "front"])
            let id = try await cri.createContainer(.with { $0.podSandboxID = pod; $0.config = config; $0.sandboxConfig = podConfig }).containerID
            #expect(world.runtime.calls(.create) == [id])

            var status = try await cri.containerStatus(.with { $0.containerID = id }).status
            #expect(status.state == .containerCreated)
            #expect(status.metadata == config.metadata)
            #expect(status.image.image == ServiceWorld.image)
            #expect(status.labels == ["tier": "front"])
            #expect(status.logPath == podConfig.logDirectory + "/app.log")

            _ = try await cri.startContainer(.with { $0.containerID = id })
            status = try await cri.containerStatus(.with { $0.containerID = id }).status
            #expect(status.state == .containerRunning && status.startedAt > 0)
            #expect(await Self.code("StartContainer") { _ = try await cri.startContainer(.with { $0.containerID = id }) } == .failedPrecondition)

            let exec = try await cri.execSync(.with { $0.containerID = id; $0.cmd = ["echo", "hi"] })
            #expect(exec.exitCode == 0 && String(decoding: exec.stdout, as: UTF8.self) == "echo hi")

            let running = try await cri.listContainers(.with { $0.filter.state.state = .containerRunning }).containers
            #expect(running.map(\.id) == [id] && running.first?.podSandboxID == pod)
            #expect(try await cri.listContainers(.with { $0.filter.labelSelector = ["tier": "back"] }).containers.isEmpty)
            #expect(try await cri.listContainers(.with { $0.filter.podSandboxID = pod }).containers.count == 1)

            _ = try await cri.stopContainer(.with { $0.containerID = id; $0.timeout = 10 })
            status = try await cri.containerStatus(.with { $0.containerID = id }).status
            #expect(status.state == .containerExited)
            #expect(status.exitCode == 143 && status.finishedAt >= status.startedAt)

            #expect(await Self.code("CreateContainer") {
                _ = try await cri.createContainer(.with { $0.podSandboxID = pod; $0.config = config; $0.sandboxConfig = podConfig })
            } == .alreadyExists)
            #expect(await Self.code("CreateContainer") {
                _ = try await cri.createContainer(.with { $0.podSandboxID = "feedface"; $0.config = Self.containerConfig("other") })
            } == .notFound)
            #expect(await Self.code("CreateContainer") {
                var c = Self.containerConfig("nosuchimage")
                c.image.image = "example.com/absent:1"
                _ = try await cri.createContainer(.with { $0.podSandboxID = pod; $0.config = c; $0.sandboxConfig = podConfig })
            } == .notFound)

            for _ in 0..<2 { _ = try await cri.removeContainer(.with { $0.containerID = id }) }
            #expect(await Self.code("ContainerStatus") { _ = try await cri.containerStatus(.with { $0.containerID = id }) } == .notFound)
            #expect(world.runtime.containers.isEmpty)
        }
    }

    @Test func updateContainerResourcesChecksAndPasses() async throws {
        try await ServiceWorld.with { world in
            let cri = Self.service(world)
            let podConfig = Self.podConfig(world)
            let pod = try await cri.runPodSandbox(.with { $0.config = podConfig }).podSandboxID
            let id = try await cri.createContainer(.with { $0.podSandboxID = pod; $0.config = Self.containerConfig(); $0.sandboxConfig = podConfig }).containerID
            #expect(await Self.code("UpdateContainerResources") {
                _ = try await cri.updateContainerResources(.with { $0.containerID = id; $0.linux.memoryLimitInBytes = 1 << 28 })
            } == .failedPrecondition, "a container that is not running cannot be updated")
            _ = try await cri.startContainer(.with { $0.containerID = id })
            #expect(await Self.code("UpdateContainerResources") {
                _ = try await cri.updateContainerResources(.with { $0.containerID = id; $0.linux.cpuShares = -5 })
            } == .invalidArgument)
            _ = try await cri.updateContainerResources(.with { $0.containerID = id; $0.linux.memoryLimitInBytes = 1 << 28 })
            #expect(world.runtime.calls(.update) == [id])
        }
    }

    @Test func versionAndRuntimeConfig() async throws {
        try await ServiceWorld.with { world in
            let cri = Self.service(world)
            let v = cri.version(.init())
            #expect(v.runtimeName == "crisp" && v.runtimeApiVersion == "v1")
            #expect(cri.runtimeConfig(.init()).linux.cgroupDriver == .cgroupfs)
        }
    }
}
