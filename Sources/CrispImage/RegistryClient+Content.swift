import AsyncHTTPClient
import CrispCore
import CrispOCI
import Crypto
import NIOCore
import NIOHTTP1
import Foundation

/// A manifest as served.
struct FetchedManifest: Sendable {
    var bytes: [UInt8]
    var contentType: String?
    /// SHA-256 of the bytes (of the JWS payload for a signed schema 1 manifest): the digest the
    /// registry knows this manifest by.
    var digest: CrispCore.Digest
}

extension RegistryClient {
    static let manifestLimit = 4 << 20
    static let configLimit = 16 << 20

    /// Fetches a manifest by tag or digest. When `reference` is a digest the served bytes must
    /// hash to it.
    func manifest(_ reference: String, on source: PullSource, credentials: RegistryCredentials?) async throws -> FetchedManifest {
        // A digest reference (algorithm:hex) is written name@digest, a tag name:tag.
        let what = "manifest \(source.reference.name)\(reference.contains(":") ? "@" : ":")\(reference)"
        let r = try await get("/v2/\(source.reference.repository)/manifests/\(reference)", on: source,
                              accept: MediaType.manifestAccept, credentials: credentials, what: what)
        let bytes = try await Self.collect(r.body, limit: Self.manifestLimit, what: what)
        let type = r.headers.first(name: "Content-Type")
        var hashed = bytes
        if let type, type.hasPrefix(MediaType.dockerSchema1Signed) || type.hasPrefix(MediaType.dockerSchema1) {
            hashed = try Schema1Manifest.payload(of: bytes)
        }
        let digest = CrispCore.Digest(sha256Bytes: SHA256.hash(data: hashed))
        if let wanted = try? CrispCore.Digest(parsing: reference), wanted != digest {
            throw CrispError(.internal, "\(what) from \(source.reference.registry) has digest \(digest), want \(wanted)")
        }
        return FetchedManifest(bytes: bytes, contentType: type, digest: digest)
    }

    /// Fetches a small blob (an image config) whole, checking size and digest.
    func smallBlob(_ d: Descriptor, on source: PullSource, credentials: RegistryCredentials?) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await blob(d.digest, size: d.size, on: source, credentials: credentials, limit: Int64(Self.configLimit)) { chunk in
            out += chunk
        }
        return out
    }
}
