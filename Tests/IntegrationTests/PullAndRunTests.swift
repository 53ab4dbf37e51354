import CRIAPI
import CrispCore
import Foundation
import GRPCCore
import RegistryTestSupport
import Testing

/// The whole path through crispd: pull from a real registry (Debian's docker-registry on
/// 127.0.0.1), inspect the image, run a container from it, and remove the image.
@Suite(.serialized) struct PullAndRunTests {
    @Test func pullInspectRunAndRemove() async throws {
        if let why = PodSandboxTests.skipReason() { print("skipped: \(why)"); return }
        guard TestRegistry.available else { print("skipped: \(TestRegistry.binary) is not installed"); return }
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pusher = RegistryPusher(host: registry.host)
        let pushed: PushedImage
        do { pushed = try await pusher.pushImage("test/busybox", tag: "1", layers: [try FixtureLayer.busybox()]) } catch {
            try? await pusher.shutdown()
            throw error
        }
        try? await pusher.shutdown()

        let crispd = try CrispdProcess()
        try """
            [[registry]]
            location = "\(registry.host)"
            insecure = true
            """.write(toFile: crispd.dir + "/registries.conf", atomically: true, encoding: .utf8)
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        let world = PodSandboxTests.World(crispd: crispd, cgroupParent: cgroupParent)
        defer { world.cleanup() }
        let name = "\(registry.host)/test/busybox:1"

        try await crispd.withClients { runtime, images in
            var fsBefore = try await images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
            var pull = Runtime_V1_PullImageRequest()
            pull.image.image = name
            let ref = try await images.pullImage(pull).imageRef
            #expect(ref == pushed.configDigest.description)

            var statusReq = Runtime_V1_ImageStatusRequest()
            statusReq.image.image = name
            let status = try await images.imageStatus(statusReq).image
            #expect(status.id == ref)
            #expect(status.repoTags == [name])
            #expect(status.repoDigests.contains { $0.hasSuffix("@" + pushed.manifestDigest.description) })
            #expect(status.size > 0)
            #expect(try await images.listImages(Runtime_V1_ListImagesRequest()).images.map(\.id) == [ref])
            let fsAfter = try await images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
            #expect((fsAfter.imageFilesystems.first?.usedBytes.value ?? 0) > (fsBefore.imageFilesystems.first?.usedBytes.value ?? 0))
            fsBefore = fsAfter

            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = PodSandboxTests.podConfig("pulled", cgroupParent: cgroupParent)
            let pod = try await runtime.runPodSandbox(run).podSandboxID
            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = pod
            create.config.metadata.name = "hello"
            create.config.image.image = name
            create.config.command = ["/bin/sh", "-c", "echo pulled and running"]
            create.config.logPath = crispd.dir + "/hello.log"
            let container = try await runtime.createContainer(create).containerID
            var start = Runtime_V1_StartContainerRequest()
            start.containerID = container
            _ = try await runtime.startContainer(start)
            var cs = Runtime_V1_ContainerStatusRequest()
            cs.containerID = container
            let deadline = ContinuousClock.now + .seconds(10)
            var st = try await runtime.containerStatus(cs).status
            while st.state != .containerExited, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                st = try await runtime.containerStatus(cs).status
            }
            #expect(st.exitCode == 0)
            #expect(st.imageRef == ref)
            let log = (try? String(contentsOfFile: crispd.dir + "/hello.log", encoding: .utf8)) ?? ""
            #expect(log.contains(" stdout F pulled and running"))

            // An image in use can be untagged; it is gone from the list only with its last tag.
            var remove = Runtime_V1_RemoveImageRequest()
            remove.image.image = name
            _ = try await images.removeImage(remove)
            #expect(try await images.imageStatus(statusReq).hasImage == false)

            var removePod = Runtime_V1_RemovePodSandboxRequest()
            removePod.podSandboxID = pod
            _ = try await runtime.removePodSandbox(removePod)
        }
        world.assertNoLeaks()
    }
}
