import CCrispShim
import Glibc

/// A relative path (or a single name) as the bytes the tar and the kernel use. Linux names need
/// not be UTF-8, and a `String` would replace invalid bytes (a name with byte 0xff would come out
/// as U+FFFD and name another file), so layer paths and directory entries stay bytes end to end.
public struct RawPath: Hashable, Sendable, CustomStringConvertible {
    /// The path without a terminating NUL.
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ s: String) { bytes = Array(s.utf8) }
    public init(cString p: UnsafePointer<CChar>) {
        bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
    }

    public static let root = RawPath([])
    public var isEmpty: Bool { bytes.isEmpty }
    /// NUL-terminated, for C calls (an array argument is passed as a pointer to its elements).
    public var c: [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
    /// For messages and logs only: invalid bytes show as U+FFFD.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    public func appending(_ name: RawPath) -> RawPath {
        isEmpty ? name : RawPath(bytes + [UInt8(ascii: "/")] + name.bytes)
    }

    public func hasPrefix(_ other: RawPath) -> Bool { bytes.starts(with: other.bytes) }
    public func hasPrefix(_ s: String) -> Bool { bytes.starts(with: s.utf8) }
    public func dropFirst(_ n: Int) -> RawPath { RawPath(Array(bytes.dropFirst(n))) }

    public var components: [RawPath] {
        bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { RawPath(Array($0)) }
    }

    /// ("a/b", "c") for "a/b/c"; ("", "c") for a single name.
    public var split: (dir: RawPath, name: RawPath) {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (.root, self) }
        return (RawPath(Array(bytes[..<slash])), RawPath(Array(bytes[(slash + 1)...])))
    }

    /// Lexically cleans a tar path: drops empty and "." components, resolves ".." against the
    /// components before it and never above the root. Symlinks are handled by openat2, not here.
    public static func cleaned(_ raw: RawPath) -> RawPath {
        var parts: [ArraySlice<UInt8>] = []
        for c in raw.bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if c.elementsEqual(".".utf8) { continue }
            if c.elementsEqual("..".utf8) { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return RawPath(Array(parts.joined(separator: [UInt8(ascii: "/")])))
    }
}

extension SafeRoot {
    /// `open(_:flags:)` for a byte path: openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS.
    public func open(raw relative: RawPath, flags: Int32, mode: UInt32 = 0) throws -> Int32 {
        let rel = relative.isEmpty ? RawPath(".") : relative
        let fd = self.fd
        return try syscallChecked("openat2", "\(path)/\(rel)") {
            crisp_openat2(fd, rel.c, UInt64(flags | O_CLOEXEC), UInt64(mode), Self.resolveFlags)
        }
    }
}
