public import CrispCore
public import CrispOCI
public import CrispTestSupport
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A layer of a fixture image: tar entries and how the blob is compressed.
public struct FixtureLayer: Sendable {
    public var entries: [TarEntry]
    public var compression: LayerCompression

    public init(_ entries: [TarEntry], compression: LayerCompression = .gzip) {
        self.entries = entries
        self.compression = compression
    }

    /// busybox-static as /bin/busybox with /bin/sh and /bin/ls links to it.
    public static func busybox(compression: LayerCompression = .gzip) throws -> FixtureLayer {
        let bytes = try readFile("/bin/busybox")
        return FixtureLayer([
            .dir("bin"), TarEntry("bin/busybox", .file(.bytes(bytes)), mode: 0o755),
            .symlink("bin/sh", to: "busybox"), .symlink("bin/ls", to: "busybox"),
            .dir("etc"), .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"),
        ], compression: compression)
    }
}

/// What a push produced.
public struct PushedImage: Sendable {
    public var manifestDigest: CrispCore.Digest
    public var manifestBytes: [UInt8]
    public var configDigest: CrispCore.Digest
    public var layers: [Descriptor]
    public var diffIDs: [CrispCore.Digest]
    public var platform: Platform
}

/// Builds fixture images and pushes them through the registry HTTP API (monolithic blob
/// uploads, manifest PUT).
public struct RegistryPusher: Sendable {
    public let host: String
    let authorization: String?
    let http: HTTPClient
    let scheme: String

    /// `trustedCA`: push over HTTPS trusting this CA file.
    public init(host: String, basicAuth: (user: String, password: String)? = nil, trustedCA: String? = nil,
                bearerToken: String? = nil) {
        self.host = host
        self.authorization = bearerToken.map { "Bearer " + $0 }
            ?? basicAuth.map { "Basic " + Data("\($0.user):\($0.password)".utf8).base64EncodedString() }
        if let trustedCA {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.file(trustedCA)]
            self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            self.scheme = "https"
        } else {
            self.http = HTTPClient(eventLoopGroupProvider: .singleton)
            self.scheme = "http"
        }
    }

    public func shutdown() async throws { try await http.shutdown() }

    func request(_ method: HTTPMethod, _ url: String, body: [UInt8]? = nil, contentType: String? = nil) async throws -> HTTPClientResponse {
        var req = HTTPClientRequest(url: url.hasPrefix("http") ? url : "\(scheme)://\(host)\(url)")
        req.method = method
        if let authorization { req.headers.add(name: "Authorization", value: authorization) }
        if let contentType { req.headers.add(name: "Content-Type", value: contentType) }
        if let body { req.body = .bytes(ByteBuffer(bytes: body)) }
        return try await http.execute(req, timeout: .seconds(60))
    }

    @discardableResult
    public func pushBlob(_ repo: String, _ bytes: [UInt8]) async throws -> CrispCore.Digest {
        let digest = CrispCore.Digest(sha256Bytes: SHA256.hash(data: bytes))
        let start = try await request(.POST, "/v2/\(repo)/blobs/uploads/")
        _ = try await start.body.collect(upTo: 1 << 20)
        guard start.status == .accepted, let location = start.headers.first(name: "Location") else {
            throw TestSupportError("blob upload start for \(repo) answered \(start.status)")
        }
        let sep = location.contains("?") ? "&" : "?"
        let put = try await request(.PUT, location + sep + "digest=\(digest)", body: bytes, contentType: "application/octet-stream")
        _ = try await put.body.collect(upTo: 1 << 20)
        guard put.status == .created else { throw TestSupportError("blob upload for \(repo) answered \(put.status)") }
        return digest
    }

    @discardableResult
    public func pushManifest(_ repo: String, reference: String, _ bytes: [UInt8], mediaType: String) async throws -> CrispCore.Digest {
        let r = try await request(.PUT, "/v2/\(repo)/manifests/\(reference)", body: bytes, contentType: mediaType)
        let body = try await r.body.collect(upTo: 1 << 20)
        guard r.status == .created else {
            throw TestSupportError("manifest PUT \(repo):\(reference) answered \(r.status): \(String(buffer: body))")
        }
        return CrispCore.Digest(sha256Bytes: SHA256.hash(data: bytes))
    }

    /// Builds and pushes an image; `tag` nil pushes the manifest by digest only.
    public func pushImage(_ repo: String, tag: String?, layers: [FixtureLayer], oci: Bool = true,
                          platform: Platform = Platform(architecture: "amd64", os: "linux"),
                          config extra: ImageConfiguration.ContainerConfig? = nil) async throws -> PushedImage {
        var descriptors: [Descriptor] = []
        var diffIDs: [CrispCore.Digest] = []
        for l in layers {
            let tar = try TarBuilder.build(l.entries)
            diffIDs.append(diffDigest(of: tar))
            let blob: [UInt8]
            let type: String
            switch l.compression {
            case .none:
                blob = tar
                type = oci ? MediaType.ociLayer : "application/vnd.docker.image.rootfs.diff.tar"
            case .gzip:
                blob = try filter("/bin/gzip", ["-c", "-n"], tar)
                type = oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip
            case .zstd:
                blob = try filter("/usr/bin/zstd", ["-q", "-c"], tar)
                type = MediaType.ociLayerZstd
            }
            let d = try await pushBlob(repo, blob)
            descriptors.append(Descriptor(mediaType: type, digest: d, size: Int64(blob.count)))
        }
        var config = ImageConfiguration(architecture: platform.architecture, os: platform.os,
                                        config: extra ?? .init(user: "nobody", env: ["PATH=/bin"], cmd: ["/bin/sh"]),
                                        rootfs: .init(diffIDs: diffIDs), created: "2024-01-02T03:04:05Z")
        config.variant = platform.variant
        let configBytes = try encode(config)
        let configDigest = try await pushBlob(repo, configBytes)
        let manifest = ImageManifest(mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest,
                                     config: Descriptor(mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig,
                                                        digest: configDigest, size: Int64(configBytes.count)),
                                     layers: descriptors)
        let bytes = try encode(manifest)
        let digest = try await pushManifest(repo, reference: tag ?? CrispCore.Digest(sha256Bytes: SHA256.hash(data: bytes)).description,
                                            bytes, mediaType: manifest.mediaType!)
        return PushedImage(manifestDigest: digest, manifestBytes: bytes, configDigest: configDigest, layers: descriptors,
                           diffIDs: diffIDs, platform: platform)
    }

    /// Pushes an OCI index over already pushed images.
    @discardableResult
    public func pushIndex(_ repo: String, tag: String, images: [PushedImage]) async throws -> CrispCore.Digest {
        let index = ImageIndex(manifests: images.map {
            Descriptor(mediaType: MediaType.ociManifest, digest: $0.manifestDigest, size: Int64($0.manifestBytes.count), platform: $0.platform)
        })
        return try await pushManifest(repo, reference: tag, try encode(index), mediaType: MediaType.ociIndex)
    }

    func encode<T: Encodable>(_ v: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try e.encode(v))
    }
}
