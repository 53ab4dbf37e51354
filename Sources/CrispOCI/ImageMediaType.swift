/// Media types of the manifests, configs and layers crisp understands (OCI image-spec 1.1 and
/// Docker distribution schema 1 and 2).
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNonDistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    public static let ociLayerNonDistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let ociLayerNonDistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerLayerForeignGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    /// What a client sends in `Accept` when fetching a manifest, most preferred first.
    public static let manifestAccept = [
        ociIndex, dockerManifestList, ociManifest, dockerManifest, dockerSchema1Signed, dockerSchema1,
    ]
}

/// How a layer blob is compressed, from its media type.
public enum LayerCompression: String, Sendable, Equatable {
    case none, gzip, zstd

    /// The compression a layer media type declares, nil for a type that is not a layer.
    public init?(layerMediaType t: String) {
        switch t {
        case MediaType.ociLayer, MediaType.ociLayerNonDistributable, "application/vnd.docker.image.rootfs.diff.tar":
            self = .none
        case MediaType.ociLayerGzip, MediaType.ociLayerNonDistributableGzip, MediaType.dockerLayerGzip,
             MediaType.dockerLayerForeignGzip:
            self = .gzip
        case MediaType.ociLayerZstd, MediaType.ociLayerNonDistributableZstd:
            self = .zstd
        default:
            return nil
        }
    }

    /// The compression shown by the first bytes of a blob (gzip 1f 8b, zstd 28 b5 2f fd).
    public init(magic bytes: some Collection<UInt8>) {
        let b = Array(bytes.prefix(4))
        if b.count >= 2, b[0] == 0x1f, b[1] == 0x8b { self = .gzip; return }
        if b.count >= 4, b == [0x28, 0xb5, 0x2f, 0xfd] { self = .zstd; return }
        self = .none
    }
}

extension MediaType {
    /// Whether a layer type is marked non-distributable ("foreign"); such layers carry URLs.
    public static func isNonDistributable(_ t: String) -> Bool {
        t.contains(".nondistributable.") || t == dockerLayerForeignGzip
    }
}
