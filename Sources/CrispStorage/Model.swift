public import CrispCore
public import Foundation

/// A layer as the store shows it. Only complete layers (content written, diff digest checked)
/// are ever returned.
public struct Layer: Sendable, Equatable {
    public var id: LayerID
    public var parent: LayerID?
    /// Digest of the uncompressed tar; nil for container (read-write) layers.
    public var diffDigest: CrispCore.Digest?
    public var compressedDigest: CrispCore.Digest?
    public var compressedSize: Int64?
    /// Length of the uncompressed tar stream.
    public var uncompressedSize: Int64
    public var created: Date
    /// Disk space and inodes this layer adds (for a full-copy driver, including its parents').
    public var diskBytes: Int64
    public var diskInodes: Int64
}

/// An image record: the id is the config digest.
public struct Image: Sendable, Equatable {
    public var id: CrispCore.Digest
    /// Tags such as `docker.io/library/busybox:latest`; a name belongs to at most one image.
    public var names: [String]
    public var repoDigests: [String]
    /// nil for an image without layers.
    public var topLayer: LayerID?
    public var manifest: [UInt8]
    public var config: [UInt8]
    /// Sum of the uncompressed sizes of its layers.
    public var size: Int64
    public var created: Date
}

public struct Container: Sendable, Equatable {
    public var id: ContainerID
    public var name: String
    public var imageID: CrispCore.Digest
    /// The read-write layer on top of the image's top layer.
    public var layerID: LayerID
    /// Opaque to storage (the service keeps its JSON here).
    public var metadata: String
    public var created: Date
}


/// What `applyLayer` needs besides the byte stream.
public struct CreateLayerOptions: Sendable {
    /// Usually the chain id computed by the image puller; applying an id that already exists
    /// returns the existing layer.
    public var id: LayerID
    public var parent: LayerID?
    /// The digest of the uncompressed stream; a mismatch discards the layer.
    public var expectedDiffDigest: CrispCore.Digest
    public var compressedDigest: CrispCore.Digest?
    public var compressedSize: Int64?

    public init(id: LayerID, parent: LayerID?, expectedDiffDigest: CrispCore.Digest,
                compressedDigest: CrispCore.Digest? = nil, compressedSize: Int64? = nil) {
        self.id = id
        self.parent = parent
        self.expectedDiffDigest = expectedDiffDigest
        self.compressedDigest = compressedDigest
        self.compressedSize = compressedSize
    }
}

public struct CreateImageOptions: Sendable {
    public var id: CrispCore.Digest
    public var names: [String]
    public var repoDigests: [String]
    public var topLayer: LayerID?
    public var manifest: [UInt8]
    public var config: [UInt8]
    public var created: Date

    public init(id: CrispCore.Digest, names: [String] = [], repoDigests: [String] = [], topLayer: LayerID?,
                manifest: [UInt8] = [], config: [UInt8] = [], created: Date = Date()) {
        self.id = id
        self.names = names
        self.repoDigests = repoDigests
        self.topLayer = topLayer
        self.manifest = manifest
        self.config = config
        self.created = created
    }
}

public struct CreateContainerOptions: Sendable {
    public var id: ContainerID
    public var name: String
    public var imageID: CrispCore.Digest
    public var metadata: String

    public init(id: ContainerID = .random(), name: String, imageID: CrispCore.Digest, metadata: String = "") {
        self.id = id
        self.name = name
        self.imageID = imageID
        self.metadata = metadata
    }
}
