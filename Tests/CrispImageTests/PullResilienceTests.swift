import CrispCore
@testable import CrispImage
import CrispOCI
import CrispStorage
import CrispTestSupport
import Foundation
import Logging
import RegistryTestSupport
import Testing

/// A puller over the fixture's storage with its own client options (the fixture's client keeps
/// the defaults). The client is shut down whatever `body` does.
func withPuller(_ f: PullFixture, registry host: String, allowForeignLayerURLs: Bool = false,
                options configure: (inout RegistryClientOptions) -> Void = { _ in },
                _ body: (ImagePuller) async throws -> Void) async throws {
    var o = RegistryClientOptions()
    o.retries = 1
    o.retryBackoff = .milliseconds(20)
    o.certsDirectory = f.tmp.sub("certs.d")
    configure(&o)
    let client = RegistryClient(options: o, logger: Logger(label: "test"))
    let puller = ImagePuller(storage: f.storage, client: client,
                             settings: PullerSettings(registries: PullFixture.registriesInsecure([host]), maxParallelDownloads: 3,
                                                      temporaryDirectory: f.tmp.sub("downloads"),
                                                      allowForeignLayerURLs: allowForeignLayerURLs),
                             logger: Logger(label: "test"))
    do {
        try await body(puller)
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
}

/// Text that gzip cannot shrink to nothing, so that half a blob is many bytes.
func noisyText(_ bytes: Int) -> String {
    var rng = SystemRandomNumberGenerator()
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789\n")
    return String((0..<bytes).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
}

@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct PullResilienceTests {
    /// Layer 0 streams straight into storage, layer 1 is prefetched to a file: both paths.
    @Test(arguments: [0, 1])
    func stalledBlobFailsAfterTheProgressTimeout(layerIndex: Int) async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let pushed = try await f.pusher.pushImage("test/stall", tag: "t",
                                                      layers: [try .busybox(), FixtureLayer([.file("big", noisyText(300_000))])])
            let blob = pushed.layers[layerIndex].digest
            let proxy = try await TestProxy(upstream: f.registry.host, stall: blob)
            defer { proxy.stop() }
            // 3 s, not less: on a loaded 2-core host the blob that is not stalled went 1 s without
            // data once (the whole suite at once), and the timeout named it instead.
            try await withPuller(f, registry: proxy.host, options: { $0.progressTimeout = .seconds(3) }) { puller in
                await #expect { try await puller.pull(try ImageReference(parsing: "\(proxy.host)/test/stall:t")) } throws: { e in
                    guard let e = e as? CrispError else { return false }
                    return e.code == .deadlineExceeded && e.message.contains("\(blob)") && e.message.contains(proxy.host)
                        && e.message.contains("3.0 seconds") && e.message.contains("progress timeout")
                }
            }
            #expect(try await f.storage.images().isEmpty)
            #expect(try await f.storage.layers().isEmpty)
            #expect(f.leftoverDownloads().isEmpty)
        }
    }

    @Test(arguments: [0, 1])
    func droppedConnectionResumesWithOneRangeRequest(layerIndex: Int) async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let pushed = try await f.pusher.pushImage("test/resume", tag: "t",
                                                      layers: [try .busybox(), FixtureLayer([.file("big", noisyText(300_000))])])
            let blob = pushed.layers[layerIndex].digest
            let proxy = try await TestProxy(upstream: f.registry.host, cutOnce: blob)
            defer { proxy.stop() }
            try await withPuller(f, registry: proxy.host) { puller in
                let image = try await puller.pull(try ImageReference(parsing: "\(proxy.host)/test/resume:t"))
                #expect(image.id == pushed.configDigest)
            }
            let counts = try await proxy.counts()
            #expect(counts["GET /v2/test/resume/blobs/\(blob)"] == 2)
            #expect(counts["RANGE GET /v2/test/resume/blobs/\(blob)"] == 1)
            #expect(try await f.storage.layers().count == 2)
            #expect(f.leftoverDownloads().isEmpty)
        }
    }

    /// A server that answers the resume with the whole blob (200): the blob starts over.
    @Test(arguments: [0, 1])
    func ignoredRangeRestartsTheBlob(layerIndex: Int) async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let pushed = try await f.pusher.pushImage("test/norange", tag: "t",
                                                      layers: [try .busybox(), FixtureLayer([.file("big", noisyText(300_000))])])
            let blob = pushed.layers[layerIndex].digest
            let proxy = try await TestProxy(upstream: f.registry.host, cutOnce: blob, ignoreRange: true)
            defer { proxy.stop() }
            try await withPuller(f, registry: proxy.host) { puller in
                let image = try await puller.pull(try ImageReference(parsing: "\(proxy.host)/test/norange:t"))
                #expect(image.id == pushed.configDigest)
            }
            let counts = try await proxy.counts()
            // the cut one, the resume answered with 200, the fresh start
            #expect(counts["GET /v2/test/norange/blobs/\(blob)"] == 3)
            #expect(counts["RANGE GET /v2/test/norange/blobs/\(blob)"] == 1)
            #expect(try await f.storage.layers().count == 2)
            #expect(f.leftoverDownloads().isEmpty)
        }
    }
}
