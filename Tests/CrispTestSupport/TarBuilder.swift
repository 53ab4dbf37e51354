public import CrispCore
import CArchive
import Crypto
import Glibc

/// One entry of a test tar.
public struct TarEntry: Sendable {
    public enum Kind: Sendable {
        case file(TarContent)
        case directory
        case symlink(String)
        case hardlink(String)
        case characterDevice(major: UInt32, minor: UInt32)
        case blockDevice(major: UInt32, minor: UInt32)
        case fifo
    }

    public var path: String
    public var kind: Kind
    public var mode: UInt32
    public var uid: Int64 = 0
    public var gid: Int64 = 0
    public var mtime: Int = 1_700_000_000
    public var xattrs: [(String, [UInt8])] = []

    public init(_ path: String, _ kind: Kind, mode: UInt32? = nil, uid: Int64 = 0, gid: Int64 = 0,
                mtime: Int = 1_700_000_000, xattrs: [(String, [UInt8])] = []) {
        self.path = path
        self.kind = kind
        if let mode { self.mode = mode } else {
            switch kind {
            case .directory: self.mode = 0o755
            case .symlink: self.mode = 0o777
            default: self.mode = 0o644
            }
        }
        self.uid = uid
        self.gid = gid
        self.mtime = mtime
        self.xattrs = xattrs
    }

    public static func file(_ path: String, _ text: String, mode: UInt32 = 0o644) -> TarEntry {
        TarEntry(path, .file(.bytes(Array(text.utf8))), mode: mode)
    }
    public static func dir(_ path: String, mode: UInt32 = 0o755) -> TarEntry { TarEntry(path, .directory, mode: mode) }
    public static func symlink(_ path: String, to target: String) -> TarEntry { TarEntry(path, .symlink(target)) }
    public static func hardlink(_ path: String, to target: String) -> TarEntry { TarEntry(path, .hardlink(target)) }
}

/// File content: literal bytes, or a generated pattern streamed in blocks (for big files).
public enum TarContent: Sendable {
    case bytes([UInt8])
    case pattern(size: Int, seed: UInt8)

    var size: Int {
        switch self {
        case .bytes(let b): b.count
        case .pattern(let size, _): size
        }
    }
}

/// Builds well-formed PAX tars with libarchive's writer (long names, xattrs, devices).
public enum TarBuilder {
    /// The whole tar in memory (for small test layers).
    public static func build(_ entries: [TarEntry]) throws -> [UInt8] {
        let path = "/tmp/crisp-tar-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tar"
        defer { unlink(path) }
        try write(entries, to: path)
        return try readFile(path)
    }

    /// Writes the tar to a file, streaming big contents.
    public static func write(_ entries: [TarEntry], to path: String) throws {
        guard let a = archive_write_new() else { throw CrispError.internal("archive_write_new") }
        defer { archive_write_free(a) }
        archive_write_set_format_pax_restricted(a)
        guard archive_write_open_filename(a, path) == ARCHIVE_OK else { throw err(a, path) }
        let block = [UInt8](repeating: 0, count: 65536)
        for e in entries {
            let entry = archive_entry_new()!
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, e.path)
            archive_entry_set_uid(entry, e.uid)
            archive_entry_set_gid(entry, e.gid)
            archive_entry_set_mtime(entry, e.mtime, 0)
            var size = 0
            switch e.kind {
            case .file(let c):
                archive_entry_set_filetype(entry, 0o100000)
                size = c.size
            case .directory: archive_entry_set_filetype(entry, 0o040000)
            case .symlink(let t):
                archive_entry_set_filetype(entry, 0o120000)
                archive_entry_set_symlink(entry, t)
            case .hardlink(let t):
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_hardlink(entry, t)
            case .characterDevice(let ma, let mi):
                archive_entry_set_filetype(entry, 0o020000)
                archive_entry_set_rdevmajor(entry, UInt(ma)); archive_entry_set_rdevminor(entry, UInt(mi))
            case .blockDevice(let ma, let mi):
                archive_entry_set_filetype(entry, 0o060000)
                archive_entry_set_rdevmajor(entry, UInt(ma)); archive_entry_set_rdevminor(entry, UInt(mi))
            case .fifo: archive_entry_set_filetype(entry, 0o010000)
            }
            archive_entry_set_perm(entry, e.mode)
            archive_entry_set_size(entry, Int64(size))
            for (k, v) in e.xattrs { archive_entry_xattr_add_entry(entry, k, v, v.count) }
            guard archive_write_header(a, entry) == ARCHIVE_OK else { throw err(a, e.path) }
            if case .file(let c) = e.kind {
                switch c {
                case .bytes(let b): if !b.isEmpty { _ = b.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) } }
                case .pattern(let total, let seed):
                    var chunk = block
                    var left = total
                    var i = 0
                    while left > 0 {
                        let n = min(left, chunk.count)
                        chunk[0] = seed &+ UInt8(truncatingIfNeeded: i)  // not all-zero blocks: no accidental sparseness
                        _ = chunk.withUnsafeBytes { archive_write_data(a, $0.baseAddress, n) }
                        left -= n
                        i += 1
                    }
                }
            }
        }
        guard archive_write_close(a) == ARCHIVE_OK else { throw err(a, path) }
    }

    static func err(_ a: OpaquePointer, _ what: String) -> CrispError {
        CrispError.internal("libarchive writer failed on \(what): " + (archive_error_string(a).map { String(cString: $0) } ?? "?"))
    }
}

/// SHA-256 diff digest of tar bytes.
public func diffDigest(of bytes: [UInt8]) -> CrispCore.Digest {
    CrispCore.Digest(sha256Bytes: SHA256.hash(data: bytes))
}

public func readFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemCallError("open", path, errno: errno) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw SystemCallError("read", path, errno: errno) }
        if n == 0 { return out }
        out.append(contentsOf: buf[0..<n])
    }
}

public func writeFile(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw SystemCallError("open", path, errno: errno) }
    defer { close(fd) }
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n < 0 { throw SystemCallError("write", path, errno: errno) }
        off += n
    }
}
