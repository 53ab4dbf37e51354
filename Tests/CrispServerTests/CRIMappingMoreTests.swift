import CRIAPI
import CrispCore
import CrispImage
import CrispService
import CrispTestSupport
import Foundation
import GRPCCore
import Logging
import SwiftProtobuf
import Synchronization
import Testing
@testable import CrispServer

/// The remaining RPC families at the CRI edge, on the same fakes as `CRIMappingTests`: status,
/// events, streaming URLs, checkpoint and log reopening, and the image service.
@Suite struct CRIMappingMoreTests {
    /// Hands out a URL per session and keeps what it was asked for.
    final class RecordingIssuer: StreamURLIssuer {
        let sessions = Mutex<[StreamSession]>([])
        func url(for session: StreamSession) -> String {
            sessions.withLock { $0.append(session); return "http://127.0.0.1:1/token\($0.count)" }
        }
        var baseURL: String { "http://127.0.0.1:1" }
        var connectionCount: Int { 0 }
    }

    static func running(_ world: ServiceWorld, _ cri: RuntimeService) async throws -> (pod: String, container: String) {
        let podConfig = CRIMappingTests.podConfig(world)
        let pod = try await cri.runPodSandbox(.with { $0.config = podConfig }).podSandboxID
        let id = try await cri.createContainer(.with {
            $0.podSandboxID = pod; $0.config = CRIMappingTests.containerConfig(); $0.sandboxConfig = podConfig
        }).containerID
        _ = try await cri.startContainer(.with { $0.containerID = id })
        return (pod, id)
    }

    @Test func statusReportsConditionsHandlersAndVerboseInfo() async throws {
        try await ServiceWorld.with { world in
            let issuer = RecordingIssuer()
            let cri = RuntimeService(info: RuntimeInfoService(config: LiveConfiguration(world.config)), sandboxes: world.sandboxes,
                                     containers: world.containers, streaming: issuer)
            let plain = cri.status(.init())
            #expect(plain.status.conditions.map(\.type) == ["RuntimeReady", "NetworkReady"])
            // Whether runc and conmon are installed is the host's business; a false one says why.
            for c in plain.status.conditions where !c.status { #expect(!c.reason.isEmpty && !c.message.isEmpty, "\(c)") }
            #expect(plain.info.isEmpty)
            let verbose = cri.status(.with { $0.verbose = true })
            // crictl decodes every value as JSON.
            for (key, value) in verbose.info {
                #expect((try? JSONSerialization.jsonObject(with: Data(value.utf8))) != nil, "\(key): \(value)")
            }
            #expect(verbose.info["streaming"]?.contains("http://127.0.0.1:1") == true)
        }
    }

    @Test func eventsCarryThePodAndItsContainers() async throws {
        try await ServiceWorld.with { world in
            let cri = CRIMappingTests.service(world)
            let (pod, id) = try await Self.running(world, cri)
            let e = await cri.response(for: LifecycleEvent(kind: .started, id: id, sandboxID: pod, isSandbox: false, at: 42))
            #expect(e.containerID == id && e.containerEventType == .containerStartedEvent && e.createdAt == 42)
            #expect(e.podSandboxStatus.id == pod && e.podSandboxStatus.state == .sandboxReady)
            #expect(e.containersStatuses.map(\.id) == [id] && e.containersStatuses.first?.state == .containerRunning)
            let gone = await cri.response(for: LifecycleEvent(kind: .deleted, id: pod, sandboxID: "feedface", isSandbox: true, at: 43))
            #expect(gone.containerEventType == .containerDeletedEvent && gone.podSandboxStatus.id.isEmpty)
        }
    }

    @Test func streamingRequestsAreCheckedThenGetAURL() async throws {
        try await ServiceWorld.with { world in
            let issuer = RecordingIssuer()
            let cri = RuntimeService(info: RuntimeInfoService(config: LiveConfiguration(world.config)), sandboxes: world.sandboxes,
                                     containers: world.containers, streaming: issuer)
            let (pod, id) = try await Self.running(world, cri)
            let url = try await cri.exec(.with { $0.containerID = String(id.prefix(12)); $0.cmd = ["sh"]; $0.stdout = true })
            #expect(url.url.hasPrefix("http://127.0.0.1:1/"))
            #expect(issuer.sessions.withLock { $0 } == [.exec(containerID: id, command: ["sh"], tty: false, stdin: false, stdout: true, stderr: false)])
            #expect(await CRIMappingTests.code("Exec") { _ = try await cri.exec(.with { $0.containerID = id; $0.cmd = ["sh"] }) } == .invalidArgument,
                    "no stream asked for")
            #expect(await CRIMappingTests.code("Exec") {
                _ = try await cri.exec(.with { $0.containerID = id; $0.cmd = ["sh"]; $0.tty = true; $0.stdout = true; $0.stderr = true })
            } == .invalidArgument, "a terminal has no separate stderr")
            #expect(await CRIMappingTests.code("Exec") { _ = try await cri.exec(.with { $0.containerID = id; $0.stdout = true }) } == .invalidArgument)
            #expect(await CRIMappingTests.code("Exec") { _ = try await cri.exec(.with { $0.containerID = "feedface"; $0.cmd = ["sh"]; $0.stdout = true }) } == .notFound)

            _ = try await cri.attach(.with { $0.containerID = id; $0.stdout = true; $0.stdin = true })
            _ = try await cri.portForward(.with { $0.podSandboxID = pod; $0.port = [80, 8080] })
            #expect(issuer.sessions.withLock { $0 }.last == .portForward(podID: pod, ports: [80, 8080]))
            #expect(await CRIMappingTests.code("PortForward") { _ = try await cri.portForward(.with { $0.podSandboxID = pod; $0.port = [0] }) } == .invalidArgument)
            #expect(await CRIMappingTests.code("PortForward") { _ = try await cri.portForward(.with { $0.podSandboxID = "feedface" }) } == .notFound)

            _ = try await cri.stopContainer(.with { $0.containerID = id; $0.timeout = 1 })
            #expect(await CRIMappingTests.code("Attach") { _ = try await cri.attach(.with { $0.containerID = id; $0.stdout = true }) } == .failedPrecondition)
            _ = try await cri.stopPodSandbox(.with { $0.podSandboxID = pod })
            #expect(await CRIMappingTests.code("PortForward") { _ = try await cri.portForward(.with { $0.podSandboxID = pod; $0.port = [80] }) } == .failedPrecondition)

            // Without a streaming server the RPCs say so.
            let bare = CRIMappingTests.service(world)
            #expect(await CRIMappingTests.code("Exec") { _ = try await bare.exec(.with { $0.containerID = id; $0.cmd = ["sh"]; $0.stdout = true }) } == .unavailable)
        }
    }

    @Test func checkpointAndLogReopenCheckTheirRequests() async throws {
        try await ServiceWorld.with { world in
            let cri = CRIMappingTests.service(world)
            let (_, id) = try await Self.running(world, cri)
            #expect(await CRIMappingTests.code("CheckpointContainer") { _ = try await cri.checkpointContainer(.with { $0.location = "/tmp/x.tar" }) } == .invalidArgument)
            #expect(await CRIMappingTests.code("CheckpointContainer") { _ = try await cri.checkpointContainer(.with { $0.containerID = id }) } == .invalidArgument)
            #expect(await CRIMappingTests.code("CheckpointContainer") {
                _ = try await cri.checkpointContainer(.with { $0.containerID = id; $0.location = "/tmp/x.tar"; $0.timeout = -1 })
            } == .invalidArgument)
            // Whether CRIU can run is asked first (FailedPrecondition where it cannot, as here
            // without root), then the container is looked up.
            let unknown = await CRIMappingTests.code("CheckpointContainer") {
                _ = try await cri.checkpointContainer(.with { $0.containerID = "feedface"; $0.location = "/tmp/x.tar" })
            }
            #expect(unknown == .notFound || unknown == .failedPrecondition, "\(String(describing: unknown))")
            #expect(await CRIMappingTests.code("ReopenContainerLog") { _ = try await cri.reopenContainerLog(.with { $0.containerID = "feedface" }) } == .notFound)
            _ = try await cri.stopContainer(.with { $0.containerID = id; $0.timeout = 1 })
            #expect(await CRIMappingTests.code("ReopenContainerLog") { _ = try await cri.reopenContainerLog(.with { $0.containerID = id }) } == .failedPrecondition)
        }
    }

    @Test func imageFamily() async throws {
        try await ServiceWorld.with { world in
            let logger = Logger(label: "test")
            let client = RegistryClient(logger: logger)
            let puller = ImagePuller(storage: world.storage, client: client,
                                     settings: PullerSettings(temporaryDirectory: world.tmp.sub("pull-tmp")), logger: logger)
            let images = ImageManager(storage: world.storage, puller: puller, registries: .init(), pauseImage: "", logger: logger)
            let service = ImageService(images: images)
            let status = try await service.imageStatus(.with { $0.image.image = ServiceWorld.image; $0.verbose = true }, images)
            #expect(status.image.repoTags == [ServiceWorld.image] && status.image.id.hasPrefix("sha256:"))
            #expect((try? JSONSerialization.jsonObject(with: Data((status.info["info"] ?? "").utf8))) != nil)
            // CRI: an unknown image is an empty answer, not an error.
            #expect(try await service.imageStatus(.with { $0.image.image = "example.com/absent:1" }, images).hasImage == false)
            #expect(try await service.listImages(.init(), images).images.map(\.repoTags) == [[ServiceWorld.image]])
            let fs = try await service.imageFsInfo(.init(), images)
            #expect(fs.imageFilesystems.count == 1 && !fs.imageFilesystems[0].fsID.mountpoint.isEmpty)
            #expect(await CRIMappingTests.code("RemoveImage") { _ = try await service.removeImage(.init(), images) } == .invalidArgument)
            // Idempotent: removing an image that is not there succeeds.
            _ = try await service.removeImage(.with { $0.image.image = "example.com/absent:1" }, images)
            _ = try await service.removeImage(.with { $0.image.image = ServiceWorld.image }, images)
            #expect(try await service.listImages(.init(), images).images.isEmpty)
            try await client.shutdown()
        }
    }
}
