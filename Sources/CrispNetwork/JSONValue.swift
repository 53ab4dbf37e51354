public import CrispCore
import Foundation

/// A JSON document as a Sendable value. CNI configs and results are passed through to plugins
/// mostly untouched, so they are kept as values rather than decoded into fixed structs; integers
/// stay integers (a plugin reading `"mtu": 1500` must not see `1500.0`).
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses a JSON document; throws `invalidArgument` naming `what` when it is not JSON.
    public static func parse(_ bytes: some Collection<UInt8>, what: String) throws(CrispError) -> JSONValue {
        do {
            return try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        } catch let e as DecodingError {
            throw CrispError(.invalidArgument, "\(what) is not valid JSON: \(Self.describe(e))")
        } catch {
            throw CrispError(.invalidArgument, "\(what) is not valid JSON: \(error)")
        }
    }

    /// Compact JSON with sorted keys (stable bytes for caches and tests).
    public func encoded() -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a JSONValue cannot fail: every case maps to a JSON value (non-finite doubles
        // are never produced by the decoder).
        return Array((try? enc.encode(self)) ?? Data("null".utf8))
    }

    public var encodedString: String { String(decoding: encoded(), as: UTF8.self) }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case .dataCorrupted(let c): return c.underlyingError.map { "\($0)" } ?? c.debugDescription
        default: return "\(e)"
        }
    }

    // MARK: accessors

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int64(d)
        default: return nil
        }
    }
}
