/// A content digest such as `sha256:9f86…`. Valid by construction: the algorithm is known and the
/// hex part has the right length and only lower-case hex digits.
public struct Digest: Hashable, Sendable, CustomStringConvertible, Codable, Comparable {
    public enum Algorithm: String, Sendable, Codable {
        case sha256, sha512
        var hexLength: Int { self == .sha256 ? 64 : 128 }
    }

    public let algorithm: Algorithm
    public let hex: String

    public init(algorithm: Algorithm, hex: String) throws(CrispError) {
        guard hex.utf8.count == algorithm.hexLength,
              hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else {
            throw .invalidArgument("invalid \(algorithm.rawValue) digest hex \"\(hex)\": want \(algorithm.hexLength) lower-case hex digits")
        }
        self.algorithm = algorithm
        self.hex = hex
    }

    /// Parses `algorithm:hex`.
    public init(parsing string: String) throws(CrispError) {
        guard let colon = string.firstIndex(of: ":") else {
            throw .invalidArgument("invalid digest \"\(string)\": want ALGORITHM:HEX")
        }
        let alg = String(string[..<colon])
        guard let algorithm = Algorithm(rawValue: alg) else {
            throw .invalidArgument("invalid digest \"\(string)\": unsupported algorithm \"\(alg)\"")
        }
        try self.init(algorithm: algorithm, hex: String(string[string.index(after: colon)...]))
    }

    /// SHA-256 digest from raw 32 bytes.
    public init(sha256Bytes bytes: some Sequence<UInt8>) {
        var s = ""
        s.reserveCapacity(64)
        for b in bytes {
            s.append(Self.hexDigits[Int(b >> 4)])
            s.append(Self.hexDigits[Int(b & 0xF)])
        }
        self.algorithm = .sha256
        self.hex = s
    }

    private static let hexDigits: [Character] = Array("0123456789abcdef")

    public var description: String { "\(algorithm.rawValue):\(hex)" }
    /// The first 12 hex digits, as shown to people.
    public var short: String { String(hex.prefix(12)) }

    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: s) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
