import CrispCore
@testable import CrispImage
import CrispOCI
import CrispService
import CrispStorage
import CrispTestSupport
import Foundation
import Logging
import RegistryTestSupport
import Testing

@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct ImageManagerTests {
    func manager(_ f: PullFixture, pause: String = "") -> ImageManager {
        ImageManager(storage: f.storage, puller: f.puller, registries: PullFixture.registriesInsecure([f.registry.host]),
                     pauseImage: pause, logger: Logger(label: "test"))
    }

    @Test func statusListRemoveAndFsInfo() async throws {
        try await withPullFixture { f in
            let h = f.registry.host
            let pushed = try await f.pusher.pushImage("app", tag: "1", layers: [try .busybox(), FixtureLayer([.file("big", String(repeating: "x", count: 100_000))])],
                                                      config: .init(user: "1000:1000", cmd: ["/bin/sh"]))
            try await f.pusher.pushManifest("app", reference: "2", pushed.manifestBytes, mediaType: MediaType.ociManifest)
            let m = manager(f, pause: "\(h)/app:2")
            let before = try await m.filesystemInfo()
            #expect(before.images.usedBytes == 0)

            let id = try await m.pull("\(h)/app:1")
            #expect(id == pushed.configDigest)
            #expect(try await m.pull("\(h)/app:2") == id)
            let after = try await m.filesystemInfo()
            let busyboxSize = UInt64(try readFile("/bin/busybox").count)
            #expect(after.images.usedBytes >= busyboxSize + 100_000)
            // vfs copies the parent into each layer: the second layer holds busybox again.
            #expect(after.images.usedBytes >= 2 * busyboxSize + 100_000)
            #expect(after.images.usedBytes < 2 * busyboxSize + 100_000 + 64 * 1024)
            #expect(after.images.inodesUsed >= 7)
            #expect(after.timestamp > before.timestamp)

            // status by tag, id, id prefix, digest reference; unknown → nil
            let s = try #require(try await m.status("\(h)/app:1"))
            #expect(s.id == id)
            #expect(Set(s.repoTags) == ["\(h)/app:1", "\(h)/app:2"])
            #expect(s.repoDigests == ["\(h)/app@\(pushed.manifestDigest)"])
            #expect(s.user == .uid(1000))
            #expect(s.pinned)
            #expect(s.size > busyboxSize)
            #expect(try await m.status(id.description)?.id == id)
            #expect(try await m.status(id.hex)?.id == id)
            #expect(try await m.status(String(id.hex.prefix(12)))?.id == id)
            #expect(try await m.status("\(h)/app@\(pushed.manifestDigest)")?.id == id)
            #expect(try await m.status("\(h)/app:3") == nil)
            #expect(try await m.status("sha256:" + String(repeating: "0", count: 64)) == nil)

            #expect(try await m.list(filter: nil).count == 1)
            #expect(try await m.list(filter: "\(h)/app:2").map(\.id) == [id])
            #expect(try await m.list(filter: "\(h)/nothing").isEmpty)

            // removing one of two tags only untags
            try await m.remove("\(h)/app:1")
            #expect(try await m.status(id.description)?.repoTags == ["\(h)/app:2"])

            // an image used by a container is refused (as CRI-O), by tag and by id, and stays whole
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "user", imageID: id))
            for name in ["\(h)/app:2", id.description] {
                do {
                    try await m.remove(name)
                    Issue.record("removing \(name) while a container uses it was accepted")
                } catch let e as CrispError {
                    #expect(e.code == .failedPrecondition)
                    #expect(e.message.contains("user") && e.message.contains(c.id.rawValue), "\(e.message)")
                }
            }
            #expect(try await m.status(id.description)?.repoTags == ["\(h)/app:2"])
            #expect(try await f.storage.layers().filter { $0.diffDigest != nil }.count == 2)
            try await f.storage.removeContainer(c.id)

            // by id: gone, with its layers; usage back to zero; unknown removal succeeds
            try await m.remove(id.description)
            #expect(try await m.status(id.description) == nil)
            #expect(try await f.storage.layers().isEmpty)
            #expect(try await m.filesystemInfo().images.usedBytes == 0)
            try await m.remove(id.description)
            try await m.remove("\(h)/never:pulled")
        }
    }

    @Test func missingPolicyFileRefusesPullsUntilItExists() async throws {
        try await withPullFixture { f in
            let h = f.registry.host
            _ = try await f.pusher.pushImage("app", tag: "1", layers: [FixtureLayer([.file("a", "1")])])
            let path = f.tmp.sub("policy.json")
            let m = ImageManager(storage: f.storage, puller: f.puller, registries: PullFixture.registriesInsecure([h]),
                                 pauseImage: "", missingPolicyPath: path, logger: Logger(label: "test"))
            await #expect { try await m.pull("\(h)/app:1") } throws: { e in
                guard let e = e as? CrispError else { return false }
                return e.code == .failedPrecondition && e.message.contains(path) && e.message.contains("signature_policy")
            }
            #expect(try await f.storage.images().isEmpty)

            // Once the file exists it is loaded and enforced.
            try #"{"default": [{"type": "reject"}]}"#.write(toFile: path, atomically: true, encoding: .utf8)
            await #expect { try await m.pull("\(h)/app:1") } throws: { e in
                (e as? CrispError)?.code == .permissionDenied
            }
            f.puller.updatePolicy(nil)
            _ = try await m.pull("\(h)/app:1")
        }
    }
}
