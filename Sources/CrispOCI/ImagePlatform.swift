/// An OS/architecture pair as in an image index entry or an image config.
public struct Platform: Codable, Sendable, Hashable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    public var description: String { "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "") }

    /// The platform of the running process, in Go's GOARCH/GOOS spelling.
    public static var current: Platform {
        #if arch(x86_64)
        return Platform(architecture: "amd64", os: "linux")
        #elseif arch(arm64)
        return Platform(architecture: "arm64", os: "linux", variant: "v8")
        #elseif arch(arm)
        return Platform(architecture: "arm", os: "linux", variant: "v7")
        #elseif arch(s390x)
        return Platform(architecture: "s390x", os: "linux")
        #elseif arch(powerpc64le)
        return Platform(architecture: "ppc64le", os: "linux")
        #else
        return Platform(architecture: "unknown", os: "linux")
        #endif
    }

    /// Normalised architecture spelling (`x86_64` → `amd64`, `aarch64` → `arm64`).
    static func normalize(architecture a: String) -> String {
        switch a.lowercased() {
        case "x86_64", "x86-64": return "amd64"
        case "aarch64": return "arm64"
        case "armhf": return "arm"
        default: return a.lowercased()
        }
    }

    /// How well `candidate` fits this (wanted) platform: nil when it does not run here, larger
    /// is better. OS and architecture must match; an exact variant beats a missing one, and
    /// a different variant does not match (except arm64's implied `v8`).
    public func matchScore(_ candidate: Platform) -> Int? {
        guard candidate.os.lowercased() == os.lowercased(),
              Self.normalize(architecture: candidate.architecture) == Self.normalize(architecture: architecture)
        else { return nil }
        let want = variant ?? "", have = candidate.variant ?? ""
        if want == have { return 2 }
        if have.isEmpty { return 1 }
        if Self.normalize(architecture: architecture) == "arm64", have == "v8" || want == "v8" && have.isEmpty { return 2 }
        return nil
    }
}
