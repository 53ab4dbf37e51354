import CrispCore
import CrispOCI
import Crypto
import Foundation
import Logging

/// A manifest resolved down to one image for this platform.
struct ResolvedImage: Sendable {
    enum Kind: Sendable {
        case image(ImageManifest, config: [UInt8], ImageConfiguration)
        case schema1(Schema1Manifest)
    }
    var kind: Kind
    /// The bytes of the image manifest stored with the image.
    var manifestBytes: [UInt8]
    /// Digest of what the registry served for the name (the index when there is one).
    var manifestDigest: CrispCore.Digest
}

func sha256(_ bytes: [UInt8]) -> SHA256.Digest { SHA256.hash(data: bytes) }

extension ImagePuller {
    func resolve(name: ImageReference, from source: PullSource, credentials: RegistryCredentials?,
                 platform: Platform) async throws -> ResolvedImage {
        let ref = source.reference.digest?.description ?? source.reference.tag ?? ImageReference.defaultTag
        let top = try await client.manifest(ref, on: source, credentials: credentials)
        var current = top
        var parsed = try ParsedManifest(bytes: top.bytes, contentType: top.contentType)
        if case .index(let index) = parsed {
            let entry = try index.select(platform: platform)
            current = try await client.manifest(entry.digest.description, on: source, credentials: credentials)
            parsed = try ParsedManifest(bytes: current.bytes, contentType: current.contentType)
        }
        switch parsed {
        case .index:
            throw CrispError.invalidArgument("\(name): an index entry points at another index (nested indexes are not supported)")
        case .schema1(let m):
            return ResolvedImage(kind: .schema1(m), manifestBytes: current.bytes, manifestDigest: top.digest)
        case .image(let m):
            let configBytes = try await client.smallBlob(m.config, on: source, credentials: credentials)
            let config: ImageConfiguration
            do { config = try JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)) } catch {
                throw CrispError.invalidArgument("\(name): image config \(m.config.digest) is malformed: \(ParsedManifest.describe(error))")
            }
            try config.validate()
            guard config.rootfs.diffIDs.count == m.layers.count else {
                throw CrispError.invalidArgument("\(name): manifest has \(m.layers.count) layers but the config lists \(config.rootfs.diffIDs.count) diff ids")
            }
            if platform.matchScore(Platform(architecture: config.architecture, os: config.os, variant: config.variant)) == nil {
                logger.warning("image platform differs from this machine", metadata: [
                    "image": "\(name)", "platform": "\(config.os)/\(config.architecture)"])
            }
            return ResolvedImage(kind: .image(m, config: configBytes, config), manifestBytes: current.bytes, manifestDigest: top.digest)
        }
    }
}
