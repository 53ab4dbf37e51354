public import CrispCore
public import Foundation

/// An OCI image configuration (also the Docker v2 image config, which adds fields crisp ignores).
public struct ImageConfiguration: Codable, Sendable, Equatable {
    public var created: String?
    public var author: String?
    public var architecture: String
    public var os: String
    public var variant: String?
    public var config: ContainerConfig?
    public var rootfs: RootFS
    public var history: [History]?

    public init(architecture: String, os: String, config: ContainerConfig? = nil, rootfs: RootFS,
                history: [History]? = nil, created: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.config = config
        self.rootfs = rootfs
        self.history = history
        self.created = created
    }

    /// The runtime defaults of the image (`config` in the JSON).
    public struct ContainerConfig: Codable, Sendable, Equatable {
        public var user: String?
        public var exposedPorts: [String: EmptyObject]?
        public var env: [String]?
        public var entrypoint: [String]?
        public var cmd: [String]?
        public var volumes: [String: EmptyObject]?
        public var workingDir: String?
        public var labels: [String: String]?
        public var stopSignal: String?

        enum CodingKeys: String, CodingKey {
            case user = "User", exposedPorts = "ExposedPorts", env = "Env", entrypoint = "Entrypoint"
            case cmd = "Cmd", volumes = "Volumes", workingDir = "WorkingDir", labels = "Labels"
            case stopSignal = "StopSignal"
        }

        public init(user: String? = nil, env: [String]? = nil, entrypoint: [String]? = nil, cmd: [String]? = nil,
                    workingDir: String? = nil, labels: [String: String]? = nil) {
            self.user = user
            self.env = env
            self.entrypoint = entrypoint
            self.cmd = cmd
            self.workingDir = workingDir
            self.labels = labels
        }
    }

    public struct RootFS: Codable, Sendable, Equatable {
        public var type: String
        public var diffIDs: [CrispCore.Digest]

        enum CodingKeys: String, CodingKey { case type, diffIDs = "diff_ids" }

        public init(diffIDs: [CrispCore.Digest]) {
            self.type = "layers"
            self.diffIDs = diffIDs
        }
    }

    public struct History: Codable, Sendable, Equatable {
        public var created: String?
        public var createdBy: String?
        public var author: String?
        public var comment: String?
        public var emptyLayer: Bool?

        enum CodingKeys: String, CodingKey {
            case created, author, comment
            case createdBy = "created_by", emptyLayer = "empty_layer"
        }

        public init(created: String? = nil, createdBy: String? = nil, emptyLayer: Bool? = nil) {
            self.created = created
            self.createdBy = createdBy
            self.emptyLayer = emptyLayer
        }
    }

    /// Checks that the config describes a Linux image whose layer list is non-degenerate.
    public func validate() throws(CrispError) {
        guard rootfs.type == "layers" else {
            throw .invalidArgument("image config rootfs.type is \"\(rootfs.type)\", want \"layers\"")
        }
    }

    /// The config's `created` time, if it parses as RFC 3339 (with or without a fraction of any
    /// length, `Z` or an offset). FoundationEssentials' parser, not `ISO8601DateFormatter`: that
    /// one goes through CoreFoundation to ICU, whose calendar and time-zone data a pull then keeps
    /// mapped in crispd (about 1 MB of RSS for one date).
    public var createdDate: Date? {
        guard let created else { return nil }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(created)
    }
}

/// `{}` in JSON (the values of ExposedPorts and Volumes).
public struct EmptyObject: Codable, Sendable, Equatable {
    public init() {}
}
