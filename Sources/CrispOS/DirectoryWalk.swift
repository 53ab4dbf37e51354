import CrispCore
import Glibc
import CCrispShim

/// Directory operations that work on open fds, never follow symlinks and keep names as bytes
/// (`RawPath`; Linux names need not be UTF-8), so a tree that holds untrusted content (a layer)
/// can be listed, removed or measured without leaving it and without missing a name.
public enum DirectoryWalk {
    /// The entries of the directory `dirfd` (without "." and ".."). `dirfd` stays open and owned
    /// by the caller.
    public static func entries(of dirfd: Int32, subject: @autoclosure () -> String) throws -> [(name: RawPath, type: UInt8)] {
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

    /// The entries of the directory at `path`.
    public static func entries(atPath path: String) throws -> [(name: RawPath, type: UInt8)] {
        let fd = try syscallChecked("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        return try entries(of: fd, subject: path)
    }

    /// Removes `name` in `dirfd` and, if it is a directory, everything below it. A missing name
    /// is not an error. Symlinks are removed, never followed; mount points below are not crossed
    /// (removal fails with EBUSY instead of deleting another filesystem's content).
    public static func removeAll(in dirfd: Int32, name: RawPath, subject: @autoclosure () -> String) throws {
        let cname = name.c
        if unlinkat(dirfd, cname, 0) == 0 { return }
        let e = errno
        if e == ENOENT { return }
        guard e == EISDIR || e == EPERM else { throw SystemCallError("unlinkat", "\(subject())/\(name)", errno: e) }
        let child = try syscallChecked("openat", "\(subject())/\(name)") {
            openat(dirfd, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        defer { close(child) }
        try removeContents(of: child, subject: "\(subject())/\(name)")
        _ = try syscallChecked("unlinkat", "\(subject())/\(name)") { unlinkat(dirfd, cname, AT_REMOVEDIR) }
    }

    /// Removes everything inside the directory `dirfd`, keeping the directory itself.
    public static func removeContents(of dirfd: Int32, subject: @autoclosure () -> String) throws {
        for (name, _) in try entries(of: dirfd, subject: subject()) {
            try removeAll(in: dirfd, name: name, subject: subject())
        }
    }

    /// Removes the tree at an absolute `path` (missing is fine).
    public static func removeTree(_ path: String) throws {
        let (dir, name) = splitPath(path)
        let parent = dir.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : dir
        let pfd = Glibc.open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if pfd < 0 {
            if errno == ENOENT { return }
            throw SystemCallError("open", parent, errno: errno)
        }
        defer { close(pfd) }
        try removeAll(in: pfd, name: RawPath(name), subject: parent)
    }

    /// Bytes (allocated blocks × 512) and inodes used by the tree at `path`; hard-linked files
    /// are counted once. Does not cross into other filesystems.
    public static func usage(of path: String) throws -> (bytes: UInt64, inodes: UInt64) {
        let fd = try syscallChecked("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        var st = stat()
        _ = try syscallChecked("fstat", path) { fstat(fd, &st) }
        var seen = Set<UInt64>()
        var bytes = UInt64(st.st_blocks) * 512
        var inodes: UInt64 = 1
        try usage(dirfd: fd, device: st.st_dev, subject: path, seen: &seen, bytes: &bytes, inodes: &inodes)
        return (bytes, inodes)
    }

    private static func usage(dirfd: Int32, device: UInt, subject: String, seen: inout Set<UInt64>,
                              bytes: inout UInt64, inodes: inout UInt64) throws {
        for (name, _) in try entries(of: dirfd, subject: subject) {
            let cname = name.c
            var st = stat()
            if fstatat(dirfd, cname, &st, AT_SYMLINK_NOFOLLOW) != 0 { continue }  // raced with removal
            if st.st_nlink > 1 {
                if !seen.insert(UInt64(st.st_ino)).inserted { continue }
            }
            bytes += UInt64(st.st_blocks) * 512
            inodes += 1
            if (st.st_mode & S_IFMT) == S_IFDIR, st.st_dev == device {
                let child = openat(dirfd, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child < 0 { continue }
                defer { close(child) }
                try usage(dirfd: child, device: device, subject: "\(subject)/\(name)", seen: &seen, bytes: &bytes, inodes: &inodes)
            }
        }
    }
}
