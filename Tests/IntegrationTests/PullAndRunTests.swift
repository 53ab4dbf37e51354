import IntegrationSupport
import CRIAPI
import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import RegistryTestSupport
import Testing

/// The whole path through crispd: pull from a real registry (Debian's docker-registry on
/// 127.0.0.1), inspect the image, run a container from it, and remove the image.
@Suite(.serialized) struct PullAndRunTests {
    @Test func pullInspectRunAndRemove() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
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
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
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
            run.config = CRI.podConfig("pulled", cgroupParent: cgroupParent)
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

            // An image in use is refused with FailedPrecondition, as CRI-O does; once its
            // container is gone it can be removed, and its layers go with it.
            var remove = Runtime_V1_RemoveImageRequest()
            remove.image.image = name
            do {
                _ = try await images.removeImage(remove)
                Issue.record("RemoveImage of an image in use was accepted")
            } catch let e as RPCError {
                #expect(e.code == .failedPrecondition)
                #expect(e.message.contains(container), "\(e.message)")
            }
            #expect(try await images.imageStatus(statusReq).hasImage)

            var removePod = Runtime_V1_RemovePodSandboxRequest()
            removePod.podSandboxID = pod
            _ = try await runtime.removePodSandbox(removePod)
            _ = try await images.removeImage(remove)
            #expect(try await images.imageStatus(statusReq).hasImage == false)
            let fsEnd = try await images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
            #expect((fsEnd.imageFilesystems.first?.usedBytes.value ?? .max) < (fsBefore.imageFilesystems.first?.usedBytes.value ?? 0),
                    "image store still holds the removed image's layers")
            statusReq.image.image = ref
            #expect(try await images.imageStatus(statusReq).hasImage == false)
        }
        world.assertNoLeaks()
    }
}

/// `pause_image`: a pod that needs an infra container gets it from that image, pulled on first use.
@Suite(.serialized) struct PauseImageTests {
    @Test func sharedPIDPodRunsItsInfraFromThePauseImage() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        guard TestRegistry.available else { print("skipped: \(TestRegistry.binary) is not installed"); return }
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pause = URL(fileURLWithPath: CrispdProcess.binary).deletingLastPathComponent().appendingPathComponent("crisp-pause").path
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: pause)))
        let pusher = RegistryPusher(host: registry.host)
        do {
            _ = try await pusher.pushImage("test/pause", tag: "1", layers: [FixtureLayer([
                TarEntry("pause", .file(.bytes(bytes)), mode: 0o755), .dir("proc"), .dir("dev"), .dir("sys"), .dir("etc"),
            ])])
        } catch {
            try? await pusher.shutdown()
            throw error
        }
        try? await pusher.shutdown()

        let crispd = try CrispdProcess()
        try "[[registry]]\nlocation = \"\(registry.host)\"\ninsecure = true\n"
            .write(toFile: crispd.dir + "/registries.conf", atomically: true, encoding: .utf8)
        let pauseImage = "\(registry.host)/test/pause:1"
        try crispd.writeConfig("[crisp.image]\npause_image = \"\(pauseImage)\"\n")
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
        defer { world.cleanup() }
        try await crispd.withClients { runtime, images in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("infra-from-image", cgroupParent: cgroupParent)
            run.config.linux.securityContext.namespaceOptions.pid = .pod
            let pod = try await runtime.runPodSandbox(run).podSandboxID
            var status = Runtime_V1_PodSandboxStatusRequest()
            status.podSandboxID = pod
            status.verbose = true
            let info = try await runtime.podSandboxStatus(status).info["info"] ?? ""
            #expect(info.contains("\"infraContainer\":true"))
            let pid = (try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])?["pid"] as? Int ?? 0
            #expect(pid > 0)
            // The infra's root filesystem is the pause image's, mounted from crisp's storage.
            let mounts = readSmallFile("/proc/\(pid)/mountinfo") ?? ""
            let rootMount = mounts.split(separator: "\n").first { $0.split(separator: " ").dropFirst(4).first == "/" } ?? ""
            // crisp's overlay driver mounts layers through an fd of its storage directory.
            #expect(rootMount.contains(" - overlay ") && rootMount.contains("lowerdir=/proc/self/fd/") && rootMount.contains("/diff,workdir="),
                    "infra root mount: \(rootMount)")
            var imageStatus = Runtime_V1_ImageStatusRequest()
            imageStatus.image.image = pauseImage
            let image = try await images.imageStatus(imageStatus).image
            #expect(image.pinned, "the pause image is pinned against the kubelet's image GC")

            let root = crispd.root
            let overlays = { (readSmallFile("/proc/self/mountinfo") ?? "").split(separator: "\n").filter { $0.contains(root) && $0.contains(" - overlay ") }.count }
            #expect(overlays() == 1)
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = pod
            _ = try await runtime.stopPodSandbox(stop)
            #expect(overlays() == 0, "StopPodSandbox deletes the infra and releases the pause image's layer")
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = pod
            _ = try await runtime.removePodSandbox(remove)
        }
        world.assertNoLeaks()
    }
}
