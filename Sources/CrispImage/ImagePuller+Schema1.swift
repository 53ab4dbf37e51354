import CrispCore
import CrispOS
import CrispOCI
import CrispStorage
import Crypto
import Foundation

extension ImagePuller {
    /// Pulls a Docker v2 schema 1 image: layers oldest first with throwaway layers skipped, each
    /// downloaded (verified) to a temporary file, its diff digest computed by decompressing it
    /// once, then applied; the image config is built from the `v1Compatibility` history.
    /// Returns the top layer and the config bytes.
    func applySchema1(_ m: Schema1Manifest, from source: PullSource, credentials: RegistryCredentials?,
                      settings: PullerSettings, created: inout [LayerID]) async throws -> (LayerID?, [UInt8]) {
        let layers = try m.convertedLayers()
        let dir = settings.temporaryDirectory + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var parent: LayerID?
        var diffIDs: [CrispCore.Digest] = []
        for l in layers where !l.empty {
            let path = dir + "/" + l.blobSum.hex
            if !FileManager.default.fileExists(atPath: path) {
                try await download(l.blobSum, size: nil, from: source, credentials: credentials, to: path)
            }
            let diff = try await diffDigest(ofFile: path, blob: "\(l.blobSum)")
            let id = LayerID.chainID(parent: parent, diffDigest: diff)
            if try await storage.layer(id) == nil {
                let options = CreateLayerOptions(id: id, parent: parent, expectedDiffDigest: diff, compressedDigest: l.blobSum)
                let (_, mine) = try await sharedApply(id) {
                    try await self.applyStream(options, blob: "\(l.blobSum)") { input in try await Self.readFile(path, into: input) }
                }
                if mine { created.append(id) }
            }
            diffIDs.append(diff)
            parent = id
        }
        let config = try m.convertedConfig(diffIDs: diffIDs)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (parent, [UInt8](try encoder.encode(config)))
    }

    /// SHA-256 of a layer blob's uncompressed content.
    func diffDigest(ofFile path: String, blob: String) async throws -> CrispCore.Digest {
        let input = ByteChannel()
        let output = ByteChannel(capacity: 2 << 20)
        LayerDecompressor.start(input: input, output: output, blob: blob)
        let producer = Task {
            do {
                try await Self.readFile(path, into: input)
                input.finish()
            } catch {
                input.finish(error: error)
            }
        }
        defer { output.cancel(); producer.cancel() }
        var hasher = SHA256()
        for try await chunk in output.chunks { hasher.update(data: chunk) }
        _ = await producer.result
        return CrispCore.Digest(sha256Bytes: hasher.finalize())
    }
}
