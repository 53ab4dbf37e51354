/// Mutates protobuf messages at the wire level, knowing nothing of their schema, for the request
/// fuzzer (issue 16). A template request is decoded into fields (number, wire type, value);
/// fields are replaced by boundary values, dropped, repeated, or descended into when their bytes
/// parse as a message; unknown fields are added; and now and then the bytes are plain noise.
/// No library here mutates protobuf without generated code, hence this file.
public struct WireMutator {
    public enum Value: Equatable {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
        case fixed32(UInt32)
    }
    public struct Field: Equatable {
        public var number: UInt64
        public var value: Value
    }

    /// Strings that break naive code: empty, huge, non-UTF-8, NUL, traversals, odd paths.
    public var strings: [[UInt8]]
    public var generator = SystemRandomNumberGenerator()

    public init(extraStrings: [String] = []) {
        var s: [[UInt8]] = [
            [], Array("x".utf8), Array(String(repeating: "a", count: 300).utf8),
            Array(String(repeating: "b", count: 70_000).utf8), [0xff, 0xfe, 0xc0, 0x80], [0x61, 0x00, 0x62],
            Array("../../../../../../../../etc/passwd".utf8), Array("/".utf8), Array(".".utf8), Array("..".utf8),
            Array("a/../../b".utf8), Array("-rf".utf8), Array("--help".utf8), Array("*".utf8), Array("%s%n%x".utf8),
            Array("\u{202e}\u{1F600}".utf8), Array("sha256:".utf8), Array("sha256:zz".utf8),
            Array("docker.io/library/busybox:latest".utf8), Array("busybox".utf8), Array("k8s.gcr.io/../x".utf8),
            Array("999999999999999999999999999".utf8), Array("-1".utf8), Array("runtime/default".utf8),
            Array("localhost/../../../../etc/shadow".utf8), Array("unconfined".utf8),
        ]
        s += extraStrings.map { Array($0.utf8) }
        strings = s
    }

    public static let varints: [UInt64] = [
        0, 1, 2, 3, 4, 0x7f, 0x80, 0xffff, UInt64(UInt32.max), UInt64(Int32.max), UInt64(bitPattern: -1),
        UInt64(bitPattern: Int64.min), UInt64(Int64.max), UInt64(bitPattern: -2), 1 << 40,
    ]

    // MARK: Wire format

    public static func decode(_ bytes: [UInt8]) -> [Field]? {
        var fields: [Field] = []
        var i = 0
        func varint() -> UInt64? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < bytes.count, shift < 64 {
                let b = bytes[i]; i += 1
                v |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
            return nil
        }
        while i < bytes.count {
            guard let key = varint() else { return nil }
            let number = key >> 3
            guard number > 0 else { return nil }
            switch key & 7 {
            case 0: guard let v = varint() else { return nil }; fields.append(Field(number: number, value: .varint(v)))
            case 1:
                guard i + 8 <= bytes.count else { return nil }
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
                i += 8
                fields.append(Field(number: number, value: .fixed64(v)))
            case 2:
                guard let n = varint(), n <= UInt64(bytes.count - i) else { return nil }
                fields.append(Field(number: number, value: .bytes(Array(bytes[i..<i + Int(n)]))))
                i += Int(n)
            case 5:
                guard i + 4 <= bytes.count else { return nil }
                var v: UInt32 = 0
                for k in 0..<4 { v |= UInt32(bytes[i + k]) << (8 * UInt32(k)) }
                i += 4
                fields.append(Field(number: number, value: .fixed32(v)))
            default: return nil
            }
        }
        return fields
    }

    public static func encode(_ fields: [Field]) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 { out.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
            out.append(UInt8(v))
        }
        for f in fields {
            switch f.value {
            case .varint(let v): varint(f.number << 3); varint(v)
            case .fixed64(let v): varint(f.number << 3 | 1); for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
            case .bytes(let b): varint(f.number << 3 | 2); varint(UInt64(b.count)); out += b
            case .fixed32(let v): varint(f.number << 3 | 5); for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(k)))) }
            }
        }
        return out
    }

    // MARK: Mutation

    /// One mutant of `template`: about `rate` of its fields changed, at every depth.
    public mutating func mutate(_ template: [UInt8], rate: Double = 0.25) -> [UInt8] {
        if Int.random(in: 0..<20, using: &generator) == 0 {
            return (0..<Int.random(in: 0..<64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        }
        return mutateMessage(template, rate: rate, depth: 0)
    }

    mutating func mutateMessage(_ bytes: [UInt8], rate: Double, depth: Int) -> [UInt8] {
        guard var fields = Self.decode(bytes) else { return bytes }
        var out: [Field] = []
        for f in fields {
            guard Double.random(in: 0..<1, using: &generator) < rate else {
                // Descend into nested messages even when this field itself is kept.
                if case .bytes(let b) = f.value, depth < 5, !b.isEmpty, Self.decode(b) != nil, Bool.random(using: &generator) {
                    out.append(Field(number: f.number, value: .bytes(mutateMessage(b, rate: rate, depth: depth + 1))))
                } else {
                    out.append(f)
                }
                continue
            }
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: break  // dropped
            case 1: out.append(f); out.append(f)  // repeated
            case 2: out.append(Field(number: f.number, value: .varint(Self.varints.randomElement(using: &generator)!)))  // wrong type
            default:
                switch f.value {
                case .varint: out.append(Field(number: f.number, value: .varint(Self.varints.randomElement(using: &generator)!)))
                case .fixed64: out.append(Field(number: f.number, value: .fixed64(Self.varints.randomElement(using: &generator)!)))
                case .fixed32: out.append(Field(number: f.number, value: .fixed32(UInt32.random(in: 0...UInt32.max, using: &generator))))
                case .bytes: out.append(Field(number: f.number, value: .bytes(strings.randomElement(using: &generator)!)))
                }
            }
        }
        if Int.random(in: 0..<8, using: &generator) == 0 {
            let number = UInt64.random(in: 1...40, using: &generator)
            out.append(Field(number: number, value: Bool.random(using: &generator)
                ? .varint(Self.varints.randomElement(using: &generator)!) : .bytes(strings.randomElement(using: &generator)!)))
        }
        fields = out
        return Self.encode(fields)
    }
}
