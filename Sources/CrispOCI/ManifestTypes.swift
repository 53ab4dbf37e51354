public import CrispCore

/// An OCI image manifest or a Docker v2 schema 2 manifest (the two have the same shape).
public struct ImageManifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?
    public var artifactType: String?

    public init(schemaVersion: Int = 2, mediaType: String? = MediaType.ociManifest, config: Descriptor,
                layers: [Descriptor], annotations: [String: String]? = nil) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
        self.annotations = annotations
    }

    /// Checks what a pull relies on: schema version 2, a config descriptor, layers whose media
    /// types are known layer types.
    public func validate() throws(CrispError) {
        guard schemaVersion == 2 else {
            throw .invalidArgument("image manifest has schemaVersion \(schemaVersion), want 2")
        }
        for l in layers where LayerCompression(layerMediaType: l.mediaType) == nil {
            throw .invalidArgument("image manifest layer \(l.digest) has unsupported media type \"\(l.mediaType)\"")
        }
        for l in layers + [config] where l.size < 0 {
            throw .invalidArgument("image manifest descriptor \(l.digest) has negative size \(l.size)")
        }
    }
}

/// An OCI image index or a Docker manifest list.
public struct ImageIndex: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(schemaVersion: Int = 2, mediaType: String? = MediaType.ociIndex, manifests: [Descriptor],
                annotations: [String: String]? = nil) {
        self.schemaVersion = schemaVersion
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }

    /// The entry for `platform`: the best match by `Platform.matchScore`, the first of equals.
    /// Entries without a platform are not chosen (they are attestations or artifacts).
    public func select(platform: Platform) throws(CrispError) -> Descriptor {
        var best: (score: Int, d: Descriptor)?
        for d in manifests {
            guard let p = d.platform, let s = platform.matchScore(p) else { continue }
            if best == nil || s > best!.score { best = (s, d) }
        }
        guard let best else {
            let have = manifests.compactMap { $0.platform?.description }.joined(separator: ", ")
            throw CrispError.notFound("no image for platform \(platform) in the index (has: \(have.isEmpty ? "none" : have))")
        }
        return best.d
    }
}
