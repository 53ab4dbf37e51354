import CrispCore
@testable import CrispImage
import CrispOCI
import CrispStorage
import CrispTestSupport
import Foundation
import Logging
import RegistryTestSupport
import Testing

/// Images whose top layer is marked foreign / non-distributable and lists a URL. The URL points
/// at a `TestProxy` in front of the registry's copy of the blob, so the proxy's counts tell
/// where the blob came from.
@Suite(.enabled(if: TestRegistry.available, "needs /usr/bin/docker-registry (apt docker-registry)"), .serialized)
struct ForeignLayerTests {
    struct Foreign {
        var pushed: PushedImage
        var blob: CrispCore.Digest
        var urlServer: TestProxy
        var urlPath: String { "GET /v2/test/foreign/blobs/\(blob)" }
    }

    /// Pushes a two-layer image (tag `base`, both layers ordinary) and the same image with its
    /// top layer marked foreign (tag `t`, OCI or Docker media types), whose URL is served by a
    /// new proxy (`corrupt` flips a byte there). The caller stops `urlServer`.
    func pushForeign(_ f: PullFixture, oci: Bool, corrupt: Bool = false) async throws -> Foreign {
        let pushed = try await f.pusher.pushImage("test/foreign", tag: "base",
                                                  layers: [try .busybox(), FixtureLayer([.file("foreign", "from far away")])])
        let top = pushed.layers[1]
        let urlServer = try await TestProxy(upstream: f.registry.host, corrupt: corrupt ? top.digest : nil)
        do {
            let foreignType = oci ? MediaType.ociLayerNonDistributableGzip : MediaType.dockerLayerForeignGzip
            var layers = pushed.layers
            layers[1] = Descriptor(mediaType: foreignType, digest: top.digest, size: top.size,
                                   urls: ["http://\(urlServer.host)/v2/test/foreign/blobs/\(top.digest)?token=secret"])
            if !oci { layers[0].mediaType = MediaType.dockerLayerGzip }
            let manifest = ImageManifest(mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
                                         config: Descriptor(mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig,
                                                            digest: pushed.configDigest, size: try configSize(f, pushed)),
                                         layers: layers)
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try await f.pusher.pushManifest("test/foreign", reference: "t", [UInt8](try e.encode(manifest)),
                                            mediaType: manifest.mediaType!)
            return Foreign(pushed: pushed, blob: top.digest, urlServer: urlServer)
        } catch {
            urlServer.stop()
            throw error
        }
    }

    func configSize(_ f: PullFixture, _ pushed: PushedImage) throws -> Int64 {
        let m = try JSONDecoder().decode(ImageManifest.self, from: Data(pushed.manifestBytes))
        return m.config.size
    }

    @Test(arguments: [true, false])
    func allowedURLsServeTheLayer(oci: Bool) async throws {
        try await withPullFixture { f in
            let foreign = try await pushForeign(f, oci: oci)
            defer { foreign.urlServer.stop() }
            try await withPuller(f, registry: f.registry.host, allowForeignLayerURLs: true) { puller in
                let image = try await puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/foreign:t"))
                #expect(image.id == foreign.pushed.configDigest)
            }
            #expect(try await foreign.urlServer.counts()[foreign.urlPath + "?token=secret"] == 1)
            #expect(try await f.storage.layers().count == 2)
        }
    }

    @Test func withoutPermissionTheRegistryServesTheLayer() async throws {
        try await withPullFixture { f in
            let foreign = try await pushForeign(f, oci: true)
            defer { foreign.urlServer.stop() }
            let image = try await f.puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/foreign:t"))
            #expect(image.id == foreign.pushed.configDigest)
            #expect(try await foreign.urlServer.counts().isEmpty)
        }
    }

    @Test func withoutPermissionARegistryWithoutTheBlobSaysHowToAllowURLs() async throws {
        try await withPullFixture(configure: { _ in RegistriesConfiguration() }) { f in
            let foreign = try await pushForeign(f, oci: true)
            defer { foreign.urlServer.stop() }
            let source = try await TestProxy(upstream: f.registry.host, missing: foreign.blob)
            defer { source.stop() }
            f.puller.updateRegistries(PullFixture.registriesInsecure([source.host]))
            await #expect { try await f.puller.pull(try ImageReference(parsing: "\(source.host)/test/foreign:t")) } throws: { e in
                guard let e = e as? CrispError else { return false }
                return e.code == .notFound && e.message.contains("\(foreign.blob)") && e.message.contains("foreign")
                    && e.message.contains("crisp.image.allow_foreign_layer_urls = true") && !e.message.contains("secret")
            }
            #expect(try await foreign.urlServer.counts().isEmpty)
            #expect(try await f.storage.images().isEmpty)
            #expect(try await f.storage.layers().isEmpty)
        }
    }

    @Test func aCorruptedURLBlobFailsAndStoresNothing() async throws {
        try await withPullFixture { f in
            let foreign = try await pushForeign(f, oci: true, corrupt: true)
            defer { foreign.urlServer.stop() }
            try await withPuller(f, registry: f.registry.host, allowForeignLayerURLs: true) { puller in
                await #expect { try await puller.pull(try ImageReference(parsing: "\(f.registry.host)/test/foreign:t")) } throws: { e in
                    guard let e = e as? CrispError else { return false }
                    return e.message.contains("\(foreign.blob)") && e.message.contains("digest") && !e.message.contains("secret")
                }
            }
            #expect(try await f.storage.images().isEmpty)
            #expect(try await f.storage.layers().isEmpty)
            #expect(f.leftoverDownloads().isEmpty)
        }
    }
}
