/// A CNI specification version such as `0.4.0` or `1.1.0`, compared numerically.
public struct CNIVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let major: Int, minor: Int, patch: Int

    /// The versions crisp can speak to plugins; configs naming another version are rejected.
    public static let supported: [String] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]

    public static let v0_4_0 = CNIVersion(0, 4, 0)
    public static let v1_0_0 = CNIVersion(1, 0, 0)
    public static let v1_1_0 = CNIVersion(1, 1, 0)

    public init(_ major: Int, _ minor: Int, _ patch: Int) {
        self.major = major; self.minor = minor; self.patch = patch
    }

    /// Parses `MAJOR.MINOR.PATCH`; nil for anything else.
    public init?(_ s: String) {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let a = Int(parts[0]), let b = Int(parts[1]), let c = Int(parts[2]),
              a >= 0, b >= 0, c >= 0 else { return nil }
        self.init(a, b, c)
    }

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (l: CNIVersion, r: CNIVersion) -> Bool {
        (l.major, l.minor, l.patch) < (r.major, r.minor, r.patch)
    }

    /// CHECK exists from 0.4.0 on.
    public var supportsCheck: Bool { self >= .v0_4_0 }
    /// DEL receives the cached ADD result as `prevResult` from 0.4.0 on.
    public var passesPrevResultOnDelete: Bool { self >= .v0_4_0 }
    /// STATUS and GC exist from 1.1.0 on.
    public var supportsStatusAndGC: Bool { self >= .v1_1_0 }
}
