public import CrispCore

/// A content descriptor: what a manifest or index says about a blob or a child manifest.
public struct Descriptor: Codable, Sendable, Hashable {
    public var mediaType: String
    public var digest: CrispCore.Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var platform: Platform?
    public var artifactType: String?

    public init(mediaType: String, digest: CrispCore.Digest, size: Int64, urls: [String]? = nil,
                annotations: [String: String]? = nil, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.urls = urls
        self.annotations = annotations
        self.platform = platform
    }
}
