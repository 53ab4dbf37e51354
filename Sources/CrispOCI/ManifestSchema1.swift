public import CrispCore
public import Foundation

/// A Docker v2 schema 1 manifest, signed (`+prettyjws`) or not. Layers and history are listed
/// newest first; the image config is not a blob but is rebuilt from the `v1Compatibility`
/// strings (see `convert`).
public struct Schema1Manifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var name: String?
    public var tag: String?
    public var architecture: String?
    public var fsLayers: [FSLayer]
    public var history: [V1History]

    public struct FSLayer: Codable, Sendable, Equatable {
        public var blobSum: CrispCore.Digest
        public init(blobSum: CrispCore.Digest) { self.blobSum = blobSum }
    }

    public struct V1History: Codable, Sendable, Equatable {
        public var v1Compatibility: String
        public init(v1Compatibility: String) { self.v1Compatibility = v1Compatibility }
    }

    /// The fields of a `v1Compatibility` string that a conversion uses.
    struct V1Compat: Decodable {
        var id: String?
        var created: String?
        var author: String?
        var architecture: String?
        var os: String?
        var throwaway: Bool?
        var config: ImageConfiguration.ContainerConfig?
        var containerConfig: ContainerConfig?
        struct ContainerConfig: Decodable {
            var cmd: [String]?
            enum CodingKeys: String, CodingKey { case cmd = "Cmd" }
        }
        enum CodingKeys: String, CodingKey {
            case id, created, author, architecture, os, throwaway, config
            case containerConfig = "container_config"
        }
    }

    /// One step of a converted image, oldest first.
    public struct ConvertedLayer: Sendable, Equatable {
        public var blobSum: CrispCore.Digest
        /// Empty ("throwaway") layers appear in the history but are neither pulled nor applied.
        public var empty: Bool
        public var history: ImageConfiguration.History
    }

    /// The layers to pull, oldest first, with throwaway layers marked; throws on a manifest
    /// whose layer and history lists disagree or whose history entries are not JSON.
    public func convertedLayers() throws(CrispError) -> [ConvertedLayer] {
        guard schemaVersion == 1 else { throw .invalidArgument("schema 1 manifest has schemaVersion \(schemaVersion)") }
        guard fsLayers.count == history.count, !fsLayers.isEmpty else {
            throw .invalidArgument("schema 1 manifest has \(fsLayers.count) fsLayers and \(history.count) history entries")
        }
        var out: [ConvertedLayer] = []
        for (layer, h) in zip(fsLayers, history).reversed() {
            let v: V1Compat
            do { v = try JSONDecoder().decode(V1Compat.self, from: Data(h.v1Compatibility.utf8)) } catch {
                throw .invalidArgument("schema 1 manifest has a v1Compatibility entry that is not valid JSON")
            }
            let empty = v.throwaway ?? false
            let createdBy = v.containerConfig?.cmd?.joined(separator: " ")
            out.append(ConvertedLayer(blobSum: layer.blobSum, empty: empty,
                                      history: .init(created: v.created, createdBy: createdBy, emptyLayer: empty ? true : nil)))
        }
        return out
    }

    /// The image config of the converted image: runtime config, platform and dates from the
    /// newest `v1Compatibility`, history from all, and the diff ids computed while the layers
    /// were applied (one per non-empty layer, oldest first).
    public func convertedConfig(diffIDs: [CrispCore.Digest]) throws(CrispError) -> ImageConfiguration {
        let layers = try convertedLayers()
        guard layers.filter({ !$0.empty }).count == diffIDs.count else {
            throw .internal("schema 1 conversion: \(diffIDs.count) diff ids for \(layers.filter { !$0.empty }.count) layers")
        }
        let newest: V1Compat
        do { newest = try JSONDecoder().decode(V1Compat.self, from: Data(history[0].v1Compatibility.utf8)) } catch {
            throw .invalidArgument("schema 1 manifest has a v1Compatibility entry that is not valid JSON")
        }
        var c = ImageConfiguration(architecture: newest.architecture ?? architecture ?? "amd64", os: newest.os ?? "linux",
                                   config: newest.config, rootfs: .init(diffIDs: diffIDs),
                                   history: layers.map(\.history), created: newest.created)
        c.author = newest.author
        return c
    }

    /// The bytes a schema 1 manifest's digest is computed over: for a signed manifest, the JWS
    /// payload (the document without its `signatures`, rebuilt from the protected header's
    /// `formatLength` and `formatTail`); for an unsigned one, the bytes as served.
    public static func payload(of bytes: [UInt8]) throws(CrispError) -> [UInt8] {
        struct Signed: Decodable {
            struct Signature: Decodable { var protected: String }
            var signatures: [Signature]?
        }
        struct Protected: Decodable { var formatLength: Int; var formatTail: String }
        guard let signed = try? JSONDecoder().decode(Signed.self, from: Data(bytes)),
              let first = signed.signatures?.first else { return bytes }
        guard let header = base64URLDecode(first.protected),
              let p = try? JSONDecoder().decode(Protected.self, from: Data(header)),
              p.formatLength >= 0, p.formatLength <= bytes.count,
              let tail = base64URLDecode(p.formatTail)
        else { throw .invalidArgument("signed schema 1 manifest has a malformed protected header") }
        return Array(bytes[0..<p.formatLength]) + tail
    }

    static func base64URLDecode(_ s: String) -> [UInt8]? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.utf8.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { [UInt8]($0) }
    }
}
