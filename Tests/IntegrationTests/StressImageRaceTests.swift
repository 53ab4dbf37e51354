import IntegrationSupport
import CRIAPI
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import RegistryTestSupport
import Testing

/// Racing image operations (issue 16): 8 clients pull, inspect, list, remove and create
/// containers on the same few images, which share layers, for a while. The only errors allowed
/// are NotFound (an image another client removed) and FailedPrecondition (removing an image a
/// container uses). Afterwards every image listed is whole, a container can be made from it,
/// the store check finds nothing, and removing everything leaves no layer behind.
@Suite(.serialized) struct StressImageRaceTests {
    typealias Lifecycle = CRI
    typealias Images = Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix>

    static func allowed(_ error: any Error) -> Bool {
        guard let e = error as? RPCError else { return false }
        return e.code == .notFound || e.code == .failedPrecondition
    }

    static func client(_ n: Int, names: [String], pod: (id: String, config: Runtime_V1_PodSandboxConfig),
                       runtime: Lifecycle.Client, images: Images, until: ContinuousClock.Instant,
                       findings: StressFindings) async {
        var i = 0
        while ContinuousClock.now < until {
            i += 1
            let name = names.randomElement()!
            let op = Int.random(in: 0..<5)
            do {
                switch op {
                case 0:
                    var pull = Runtime_V1_PullImageRequest()
                    pull.image.image = name
                    _ = try await images.pullImage(pull)
                case 1:
                    var status = Runtime_V1_ImageStatusRequest()
                    status.image.image = name
                    status.verbose = Bool.random()
                    let s = try await images.imageStatus(status)
                    if s.hasImage, s.image.size == 0 { findings.add("client \(n): \(name) listed with size 0") }
                case 2:
                    for image in try await images.listImages(Runtime_V1_ListImagesRequest()).images where image.repoTags.isEmpty && image.repoDigests.isEmpty {
                        findings.add("client \(n): image \(image.id) listed without a name")
                    }
                case 3:
                    var remove = Runtime_V1_RemoveImageRequest()
                    remove.image.image = name
                    _ = try await images.removeImage(remove)
                default:
                    var create = Runtime_V1_CreateContainerRequest()
                    create.podSandboxID = pod.id
                    create.sandboxConfig = pod.config
                    create.config = CRI.containerConfig("c\(n)-\(i)", ["/bin/busybox", "true"], logPath: "c\(n)-\(i).log")
                    create.config.image.image = name
                    let id = try await runtime.createContainer(create).containerID
                    if Bool.random() { _ = try await Lifecycle.status(runtime, id) }
                    var remove = Runtime_V1_RemoveContainerRequest()
                    remove.containerID = id
                    _ = try await runtime.removeContainer(remove)
                }
                findings.count()
            } catch where Self.allowed(error) {
                findings.count()
            } catch {
                findings.add("client \(n) op \(op) on \(name): \(error)")
            }
        }
    }

    @Test func racingImageOperationsLoseNothing() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        guard TestRegistry.available else { print("skipped: \(TestRegistry.binary) is not installed"); return }
        let seconds = StressSize.pick(quick: 10, full: 120)
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pusher = RegistryPusher(host: registry.host)
        // Three images on one busybox base, two of them also sharing a middle layer.
        let base = try FixtureLayer.busybox()
        let middle = FixtureLayer([.file("etc/middle", String(repeating: "m", count: 200_000))])
        do {
            _ = try await pusher.pushImage("race/a", tag: "1", layers: [base, middle, FixtureLayer([.file("etc/a", "a")])])
            _ = try await pusher.pushImage("race/b", tag: "1", layers: [base, middle, FixtureLayer([.file("etc/b", "b")])])
            _ = try await pusher.pushImage("race/c", tag: "1", layers: [base, FixtureLayer([.file("etc/c", "c")])])
        } catch {
            try? await pusher.shutdown()
            throw error
        }
        try? await pusher.shutdown()
        let names = ["a", "b", "c"].map { "\(registry.host)/race/\($0):1" }

        let crispd = try CrispdProcess()
        try "[[registry]]\nlocation = \"\(registry.host)\"\ninsecure = true\n"
            .write(toFile: crispd.dir + "/registries.conf", atomically: true, encoding: .utf8)
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        let world = CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        defer { world.cleanup() }
        let findings = StressFindings()
        let started = ContinuousClock.now

        try await crispd.withClients { [world] runtime, images in
            for name in names {
                var pull = Runtime_V1_PullImageRequest()
                pull.image.image = name
                _ = try await images.pullImage(pull)
            }
            let pod = try await Lifecycle.runPod(runtime, "race", world: world)
            let until = ContinuousClock.now + .seconds(seconds)
            await withTaskGroup(of: Void.self) { group in
                for n in 0..<8 {
                    group.addTask {
                        await Self.client(n, names: names, pod: pod, runtime: runtime, images: images, until: until, findings: findings)
                    }
                }
            }

            // Whatever is listed is whole: it has a size, and a container can be made from it.
            for image in try await images.listImages(Runtime_V1_ListImagesRequest()).images {
                var create = Runtime_V1_CreateContainerRequest()
                create.podSandboxID = pod.id
                create.sandboxConfig = pod.config
                create.config = CRI.containerConfig("check-\(image.id.suffix(8))", ["/bin/busybox", "cat", "/etc/middle"], logPath: "check.log")
                create.config.image.image = image.id
                do {
                    let id = try await runtime.createContainer(create).containerID
                    var remove = Runtime_V1_RemoveContainerRequest()
                    remove.containerID = id
                    _ = try await runtime.removeContainer(remove)
                } catch {
                    findings.add("listed image \(image.id) \(image.repoTags): cannot make a container: \(error)")
                }
            }
            let report = try await crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            for f in report.findings { findings.add("store check after the race: \(f.severity) \(f.subject): \(f.problem)") }

            // Every image pulls again, runs, and is then removed with every layer.
            for name in names {
                var pull = Runtime_V1_PullImageRequest()
                pull.image.image = name
                _ = try await images.pullImage(pull)
            }
            let c = try await Lifecycle.startContainer(runtime, pod: pod, "after", ["/bin/busybox", "cat", "/etc/middle"]) {
                $0.image.image = names[0]
            }
            #expect(try await Lifecycle.waitExited(runtime, c).exitCode == 0)
            try await Lifecycle.removePod(runtime, pod.id)
            for name in names {
                var remove = Runtime_V1_RemoveImageRequest()
                remove.image.image = name
                _ = try await images.removeImage(remove)
            }
            let empty = try await crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            #expect(empty.images == 0 && empty.layers == 0 && empty.containers == 0,
                    "left after removing everything: \(empty.images) images, \(empty.layers) layers, \(empty.containers) containers")
            #expect(empty.findings.isEmpty, "\(empty.findings)")
            let layerDirs = (try? FileManager.default.contentsOfDirectory(atPath: crispd.root + "/storage/overlay")) ?? []
            #expect(layerDirs.filter { $0 != "l" && $0 != "empty" }.isEmpty, "layer directories left: \(layerDirs)")
        }
        world.assertNoLeaks()
        let problems = findings.all
        print("stress image race: 8 clients × \(seconds) s on \(names.count) images, \(findings.operationCount) operations, "
              + "\(problems.count) problems, \(ContinuousClock.now - started)")
        let causes = crispd.log.split(separator: "\n").filter { $0.contains("rpc failed") && $0.contains("code=internal") }
        #expect(problems.isEmpty, "\(problems.prefix(20))\ncrispd's log:\n\(causes.prefix(20).joined(separator: "\n"))")
    }
}
