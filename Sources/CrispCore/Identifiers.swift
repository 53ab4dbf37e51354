/// A 64-hex-digit identifier as the CRI uses for pods and containers. Random ones come from the
/// system RNG; parsing accepts only full-length lower-case hex.
public protocol HexIdentifier: Hashable, Sendable, CustomStringConvertible, Comparable {
    var rawValue: String { get }
    init(uncheckedRawValue: String)
}

extension HexIdentifier {
    public init(parsing s: String) throws(CrispError) {
        guard s.utf8.count == 64,
              s.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else { throw .invalidArgument("invalid id \"\(s)\": want 64 lower-case hex digits") }
        self.init(uncheckedRawValue: s)
    }

    public static func random() -> Self {
        var g = SystemRandomNumberGenerator()
        var s = ""
        s.reserveCapacity(64)
        let digits = Array("0123456789abcdef")
        for _ in 0..<64 { s.append(digits[Int(g.next() & 0xF)]) }
        return Self(uncheckedRawValue: s)
    }

    public var description: String { rawValue }
    public var short: String { String(rawValue.prefix(12)) }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

public struct SandboxID: HexIdentifier {
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

public struct ContainerID: HexIdentifier {
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}

/// Storage-level identifiers of layers are also 64 hex digits.
public struct LayerID: HexIdentifier {
    public let rawValue: String
    public init(uncheckedRawValue: String) { rawValue = uncheckedRawValue }
}
