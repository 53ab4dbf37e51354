/// Hand-built ustar / old-GNU headers for malicious archives that a correct writer (libarchive)
/// refuses to produce: `..` and absolute names, wrong checksums, giant sizes, sparse maps.
public struct RawTar {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public enum TypeFlag: UInt8 {
        case file = 0x30, hardlink = 0x31, symlink = 0x32, char = 0x33, block = 0x34, dir = 0x35, fifo = 0x36
        case gnuSparse = 0x53  // 'S'
    }

    /// Appends a header and `data` (padded to 512). `declaredSize` overrides the size field (a
    /// lie about the data that follows); sizes over 8 GiB use base-256 as GNU tar does.
    public mutating func add(_ name: String, _ type: TypeFlag, data: [UInt8] = [], link: String = "",
                             mode: UInt32 = 0o644, declaredSize: Int? = nil, major: Int = 0, minor: Int = 0,
                             corruptChecksum: Bool = false, sparse: [(offset: Int, length: Int)] = [], realSize: Int = 0) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) { for (i, b) in s.utf8.prefix(len).enumerated() { h[at + i] = b } }
        func octal(_ v: Int, _ at: Int, _ len: Int) {
            if v >= 1 << (3 * (len - 1)) {  // base-256: high bit set, big-endian value
                var x = v
                for i in stride(from: len - 1, through: 1, by: -1) { h[at + i] = UInt8(x & 0xFF); x >>= 8 }
                h[at] = 0x80
            } else {
                let digits = String(v, radix: 8)
                put(String(repeating: "0", count: max(0, len - 1 - digits.count)) + digits, at, len - 1)
            }
        }
        put(name, 0, 100)
        octal(Int(mode), 100, 8)
        octal(0, 108, 8); octal(0, 116, 8)
        octal(declaredSize ?? data.count, 124, 12)
        octal(1_700_000_000, 136, 12)
        h[156] = type.rawValue
        put(link, 157, 100)
        if type == .gnuSparse {
            put("ustar  ", 257, 8)  // old GNU magic+version
            for (i, s) in sparse.prefix(4).enumerated() {
                octal(s.offset, 386 + i * 24, 12)
                octal(s.length, 386 + i * 24 + 12, 12)
            }
            octal(realSize, 483, 12)
        } else {
            put("ustar", 257, 6); put("00", 263, 2)
            octal(major, 329, 8); octal(minor, 337, 8)
        }
        for i in 148..<156 { h[i] = 0x20 }
        var sum = h.reduce(0) { $0 + Int($1) }
        if corruptChecksum { sum += 7 }
        octal(sum, 148, 7)
        h[155] = 0x20
        bytes += h
        bytes += data
        let pad = (512 - data.count % 512) % 512
        bytes += [UInt8](repeating: 0, count: pad)
    }

    /// Two zero blocks: the end-of-archive marker.
    public mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }
}

extension RawTar {
    /// Changes the type flag of the header at `offset` (default: the first) and recomputes its
    /// checksum, to make header kinds `TypeFlag` does not list (pax 'x', GNU 'L').
    public mutating func retypeLastHeader(to flag: UInt8, at offset: Int = 0) {
        bytes[offset + 156] = flag
        for i in 148..<156 { bytes[offset + i] = 0x20 }
        let sum = bytes[offset..<(offset + 512)].reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        let s = String(repeating: "0", count: max(0, 6 - digits.count)) + digits
        for (i, b) in s.utf8.enumerated() { bytes[offset + 148 + i] = b }
        bytes[offset + 154] = 0
        bytes[offset + 155] = 0x20
    }
}
