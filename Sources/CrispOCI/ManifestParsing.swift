public import CrispCore
import Foundation

/// A manifest document as served by a registry, decoded by its media type.
public enum ParsedManifest: Sendable, Equatable {
    case index(ImageIndex)
    case image(ImageManifest)
    case schema1(Schema1Manifest)

    /// Decodes `bytes` using the served `Content-Type` when it names a known manifest type,
    /// otherwise the document's own `mediaType` / `schemaVersion` fields.
    public init(bytes: [UInt8], contentType: String?) throws(CrispError) {
        struct Probe: Decodable {
            var schemaVersion: Int?
            var mediaType: String?
            var manifests: [EmptyObject]?
            var fsLayers: [EmptyObject]?
        }
        let data = Data(bytes)
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: data) } catch {
            throw .invalidArgument("manifest is not a JSON object")
        }
        var type = contentType.map { String($0.split(separator: ";")[0]).trimmingCharacters(in: .whitespaces) } ?? ""
        if !MediaType.manifestAccept.contains(type) {
            if let m = probe.mediaType, MediaType.manifestAccept.contains(m) {
                type = m
            } else if probe.schemaVersion == 1 || probe.fsLayers != nil {
                type = MediaType.dockerSchema1
            } else if probe.manifests != nil {
                type = MediaType.ociIndex
            } else {
                type = MediaType.ociManifest
            }
        }
        do {
            switch type {
            case MediaType.ociIndex, MediaType.dockerManifestList:
                self = .index(try JSONDecoder().decode(ImageIndex.self, from: data))
            case MediaType.dockerSchema1, MediaType.dockerSchema1Signed:
                self = .schema1(try JSONDecoder().decode(Schema1Manifest.self, from: data))
            default:
                let m = try JSONDecoder().decode(ImageManifest.self, from: data)
                try m.validate()
                self = .image(m)
            }
        } catch let e as CrispError {
            throw e
        } catch {
            throw .invalidArgument("malformed \(type) manifest: \(Self.describe(error))")
        }
    }

    public static func describe(_ e: any Error) -> String {
        switch e as? DecodingError {
        case .keyNotFound(let k, _): return "missing field \"\(k.stringValue)\""
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path.isEmpty ? "document" : path): \(c.debugDescription)"
        default: return "\(e)"
        }
    }
}
