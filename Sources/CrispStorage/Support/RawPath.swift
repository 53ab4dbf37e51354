import CrispCore
import CrispOS
import CCrispShim
import Glibc

/// A relative path (or a single name) as the bytes the tar and the kernel use. Linux names need
/// not be UTF-8, and a `String` would replace invalid bytes (a name with byte 0xff would come out
/// as U+FFFD and name another file), so layer paths stay bytes end to end.
struct RawPath: Hashable, Sendable, CustomStringConvertible {
    /// The path without a terminating NUL.
    var bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ s: String) { bytes = Array(s.utf8) }
    init(cString p: UnsafePointer<CChar>) {
        bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p)))
    }

    static let root = RawPath([])
    var isEmpty: Bool { bytes.isEmpty }
    /// NUL-terminated, for C calls (an array argument is passed as a pointer to its elements).
    var c: [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
    /// For messages and logs only: invalid bytes show as U+FFFD.
    var description: String { String(decoding: bytes, as: UTF8.self) }

    func appending(_ name: RawPath) -> RawPath {
        isEmpty ? name : RawPath(bytes + [UInt8(ascii: "/")] + name.bytes)
    }

    func hasPrefix(_ other: RawPath) -> Bool { bytes.starts(with: other.bytes) }
    func hasPrefix(_ s: String) -> Bool { bytes.starts(with: s.utf8) }
    func dropFirst(_ n: Int) -> RawPath { RawPath(Array(bytes.dropFirst(n))) }

    var components: [RawPath] {
        bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map { RawPath(Array($0)) }
    }

    /// ("a/b", "c") for "a/b/c"; ("", "c") for a single name.
    var split: (dir: RawPath, name: RawPath) {
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (.root, self) }
        return (RawPath(Array(bytes[..<slash])), RawPath(Array(bytes[(slash + 1)...])))
    }

    /// Lexically cleans a tar path: drops empty and "." components, resolves ".." against the
    /// components before it and never above the root. Symlinks are handled by openat2, not here.
    static func cleaned(_ raw: RawPath) -> RawPath {
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
    func open(raw relative: RawPath, flags: Int32, mode: UInt32 = 0) throws -> Int32 {
        let rel = relative.isEmpty ? RawPath(".") : relative
        let fd = self.fd
        return try syscallChecked("openat2", "\(path)/\(rel)") {
            crisp_openat2(fd, rel.c, UInt64(flags | O_CLOEXEC), UInt64(mode), Self.resolveFlags)
        }
    }
}

/// Directory operations on byte names (CrispOS's `DirectoryWalk` lists names as `String`, which
/// loses non-UTF-8 names). They work on open fds and never follow symlinks.
enum RawDirectory {
    /// The entries of directory `dirfd` (without "." and ".."); `dirfd` stays the caller's.
    static func entries(of dirfd: Int32, subject: @autoclosure () -> String) throws -> [(name: RawPath, type: UInt8)] {
        let dup = try syscallChecked("openat", subject()) { openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard let dir = fdopendir(dup) else {
            let e = errno
            close(dup)
            throw SystemCallError("fdopendir", subject(), errno: e)
        }
        defer { closedir(dir) }
        var out: [(RawPath, UInt8)] = []
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                RawPath(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name.bytes == [46] || name.bytes == [46, 46] { continue }
            out.append((name, ent.pointee.d_type))
        }
        return out
    }

    /// Removes `name` in `dirfd` and everything below it; missing is fine. Does not cross into
    /// mounts (removal fails with EBUSY instead).
    static func removeAll(in dirfd: Int32, name: RawPath, subject: @autoclosure () -> String) throws {
        let cname = name.c
        if unlinkat(dirfd, cname, 0) == 0 { return }
        let e = errno
        if e == ENOENT { return }
        guard e == EISDIR || e == EPERM else { throw SystemCallError("unlinkat", "\(subject())/\(name)", errno: e) }
        let child = try syscallChecked("openat", "\(subject())/\(name)") {
            openat(dirfd, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        defer { close(child) }
        for (entry, _) in try entries(of: child, subject: "\(subject())/\(name)") {
            try removeAll(in: child, name: entry, subject: "\(subject())/\(name)")
        }
        _ = try syscallChecked("unlinkat", "\(subject())/\(name)") { unlinkat(dirfd, cname, AT_REMOVEDIR) }
    }

    /// Removes the tree at an absolute path (trusted: the driver's own directories); missing is fine.
    static func removeTree(_ path: String) throws {
        let (dir, name) = splitPath(path)
        let parent = dir.isEmpty ? "/" : dir
        let pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if pfd < 0 {
            if errno == ENOENT { return }
            throw SystemCallError("open", parent, errno: errno)
        }
        defer { close(pfd) }
        try removeAll(in: pfd, name: RawPath(name), subject: parent)
    }
}
