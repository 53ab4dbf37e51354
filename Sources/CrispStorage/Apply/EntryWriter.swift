import CrispCore
import CrispOS
import CArchive
import CCrispShim
import Glibc

/// Writes tar entries below one root. Every parent directory is opened with openat2
/// (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the root fd, and the final component is
/// created with *at calls relative to that parent and never followed (O_NOFOLLOW, O_EXCL,
/// AT_SYMLINK_NOFOLLOW): whatever an earlier entry placed (symlinks to the outside, symlinked
/// directories, `..`), nothing outside the root is created, changed or followed.
final class EntryWriter {
    let root: SafeRoot
    let target: ApplyTarget
    var contentBytes: Int64 = 0
    var inodes: Int64 = 0
    /// Paths written by this layer; `.remove` whiteouts need them to apply opaque directories
    /// (hide the parent's children, keep this layer's own).
    var written = Set<RawPath>()
    /// Directory times are set at the end: writing children changes a directory's mtime.
    private var directoryTimes: [(path: RawPath, times: (timespec, timespec))] = []
    /// The parent directory of the last entry: most tars list many files per directory, and
    /// re-resolving the parent for each would double the system calls.
    private var cachedParentPath: RawPath?
    private var cachedParentFD: Int32 = -1

    /// With `sync = filesystem`, files at least this large start their writeback as soon as they
    /// are written (the layer is synced before it becomes visible; small files are left to that
    /// one syncfs).
    static let writebackThreshold: Int64 = 1 << 20

    init(target: ApplyTarget) throws {
        self.target = target
        self.root = try SafeRoot(path: target.root)
    }

    deinit { if cachedParentFD >= 0 { close(cachedParentFD) } }

    func write(entry: OpaquePointer, archive: OpaquePointer) throws {
        // The raw bytes: names need not be UTF-8, and a String would alter them.
        let raw = archive_entry_pathname(entry).map { RawPath(cString: $0) } ?? .root
        let path = RawPath.cleaned(raw)
        let (dir, name) = path.split
        if name.hasPrefix(".wh.") {
            invalidateParentCache()
            try applyWhiteout(dir: dir, name: name)
            return
        }
        let type = archive_entry_filetype(entry) & 0o170000
        if path.isEmpty {
            // "./" names the layer root itself: apply its metadata, create nothing.
            guard type == Glibc.S_IFDIR else {
                throw CrispError.invalidArgument("tar entry \"\(raw)\" names the layer root but is not a directory")
            }
            let fd = try root.open(".", flags: O_RDONLY | O_DIRECTORY)
            defer { close(fd) }
            try applyOwnerModeXattrs(fd: fd, entry: entry, path: raw)
            directoryTimes.append((.root, times(entry)))
            return
        }
        if let cached = cachedParentPath, cached == path || cached.hasPrefix(RawPath(path.bytes + [UInt8(ascii: "/")])) { invalidateParentCache() }
        let parent = try parentFD(dir)
        if let link = archive_entry_hardlink(entry) {
            try writeHardLink(parent: parent, name: name, path: path, target: RawPath.cleaned(RawPath(cString: link)))
        } else {
            switch type {
            case Glibc.S_IFREG: try writeRegular(parent: parent, name: name, path: path, entry: entry, archive: archive)
            case Glibc.S_IFDIR: try writeDirectory(parent: parent, name: name, path: path, entry: entry)
            case Glibc.S_IFLNK: try writeSymlink(parent: parent, name: name, path: path, entry: entry)
            case Glibc.S_IFCHR, Glibc.S_IFBLK, Glibc.S_IFIFO: try writeSpecial(parent: parent, name: name, path: path, type: type, entry: entry)
            case Glibc.S_IFSOCK: return  // a socket cannot be restored from a tar; GNU tar skips them too
            default: throw CrispError.invalidArgument("tar entry \"\(raw)\" has unknown type \(String(type, radix: 8))")
            }
            inodes += 1
        }
        if target.whiteouts == .remove { written.insert(path) }
    }

    /// Sets the deferred directory times, deepest first.
    func finish() throws {
        invalidateParentCache()
        for (path, t) in directoryTimes.reversed() {
            guard let fd = try? root.open(raw: path, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW) else { continue }  // whited out later
            defer { close(fd) }
            var ts = [t.0, t.1]
            _ = try syscallChecked("futimens", "\(target.root)/\(path)") { futimens(fd, &ts) }
        }
    }

    // MARK: - parents

    func invalidateParentCache() {
        if cachedParentFD >= 0 { close(cachedParentFD) }
        cachedParentFD = -1
        cachedParentPath = nil
    }

    /// An O_PATH fd of directory `dir` (relative to the root), creating missing directories.
    /// Owned by the cache; do not close it.
    func parentFD(_ dir: RawPath) throws -> Int32 {
        if dir == cachedParentPath { return cachedParentFD }
        invalidateParentCache()
        let fd: Int32
        do {
            fd = try root.open(raw: dir, flags: CRISP_O_PATH | O_DIRECTORY)
        } catch let e as SystemCallError where e.errno == ENOENT {
            try makeDirectories(dir)
            fd = try root.open(raw: dir, flags: CRISP_O_PATH | O_DIRECTORY)
        }
        cachedParentFD = fd
        cachedParentPath = dir
        return fd
    }

    /// `mkdir -p` inside the root for parents a tar did not list. With overlay, a directory that
    /// exists in a lower layer gets that directory's owner and mode (the upper copy decides what
    /// the merged directory looks like).
    func makeDirectories(_ dir: RawPath) throws {
        var current = RawPath.root
        for component in dir.components {
            let next = current.appending(component)
            if let fd = try? root.open(raw: next, flags: CRISP_O_PATH | O_DIRECTORY) {
                close(fd)
            } else {
                let pfd = try root.open(raw: current, flags: CRISP_O_PATH | O_DIRECTORY)
                defer { close(pfd) }
                let cname = component.c
                if mkdirat(pfd, cname, 0o755) != 0 {
                    if errno == EEXIST {
                        // Only a dangling symlink (e.g. to an absolute path outside) gets here.
                        throw CrispError.invalidArgument("layer path \"\(next)\" exists but does not lead to a directory inside the layer")
                    }
                    throw SystemCallError("mkdirat", "\(target.root)/\(next)", errno: errno)
                }
                inodes += 1
                if target.whiteouts == .remove { written.insert(next) }
                if let st = lowerStat(next), (st.st_mode & Glibc.S_IFMT) == Glibc.S_IFDIR {
                    _ = try syscallChecked("fchownat", "\(next)") { fchownat(pfd, cname, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) }
                    _ = try syscallChecked("fchmodat", "\(next)") { fchmodat(pfd, cname, st.st_mode & 0o7777, 0) }
                }
            }
            current = next
        }
    }

    /// stat of `path` in the nearest lower layer that has it (overlay only).
    func lowerStat(_ path: RawPath) -> stat? {
        for lower in target.lowerRoots {
            guard let l = try? SafeRoot(path: lower),
                  let fd = try? l.open(raw: path, flags: CRISP_O_PATH | O_NOFOLLOW) else { continue }
            defer { close(fd) }
            var st = stat()
            if fstat(fd, &st) == 0 { return st }
        }
        return nil
    }

    // MARK: - entries

    /// Creates `name` in `parent` with `create`, removing whatever is there first when it exists.
    func createReplacing(parent: Int32, name: RawPath, path: RawPath, _ create: () -> Int32) throws -> Int32 {
        var r = create()
        if r < 0 && errno == EEXIST {
            try DirectoryWalk.removeAll(in: parent, name: name, subject: "\(target.root)/\(path.split.dir)")
            r = create()
        }
        if r < 0 { throw SystemCallError("create", "\(target.root)/\(path)", errno: errno) }
        return r
    }

    func writeRegular(parent: Int32, name: RawPath, path: RawPath, entry: OpaquePointer, archive: OpaquePointer) throws {
        let cname = name.c
        let fd = try createReplacing(parent: parent, name: name, path: path) {
            openat(parent, cname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        defer { close(fd) }
        var end: Int64 = 0
        while true {
            var buffer: UnsafeRawPointer?
            var size = 0
            var offset: Int64 = 0
            let r = archive_read_data_block(archive, &buffer, &size, &offset)
            if r == ARCHIVE_EOF { break }
            if r < ARCHIVE_WARN { throw LayerApplier.archiveError(archive, "reading the data of \"\(path)\"") }
            var done = 0
            while done < size {
                let n = try syscallChecked("pwrite", "\(target.root)/\(path)") {
                    pwrite(fd, buffer! + done, size - done, off_t(offset) + off_t(done))
                }
                done += n
            }
            end = max(end, offset + Int64(size))
        }
        // Sparse files: holes are never written, only the final size is set.
        let size = archive_entry_size(entry)
        if size > end { _ = try syscallChecked("ftruncate", "\(path)") { ftruncate(fd, off_t(size)) } }
        contentBytes += max(size, end)
        if target.syncToDisk && end >= Self.writebackThreshold { startWriteback(fd) }
        try applyOwnerModeXattrs(fd: fd, entry: entry, path: path)
        var ts = [times(entry).0, times(entry).1]
        _ = try syscallChecked("futimens", "\(path)") { futimens(fd, &ts) }
    }

    func writeDirectory(parent: Int32, name: RawPath, path: RawPath, entry: OpaquePointer) throws {
        let cname = name.c
        if mkdirat(parent, cname, 0o700) != 0 {
            guard errno == EEXIST else { throw SystemCallError("mkdirat", "\(target.root)/\(path)", errno: errno) }
            var st = stat()
            if fstatat(parent, cname, &st, AT_SYMLINK_NOFOLLOW) != 0 || (st.st_mode & Glibc.S_IFMT) != Glibc.S_IFDIR {
                try DirectoryWalk.removeAll(in: parent, name: name, subject: target.root)
                _ = try syscallChecked("mkdirat", "\(target.root)/\(path)") { mkdirat(parent, cname, 0o700) }
            }
        }
        let fd = try syscallChecked("openat", "\(target.root)/\(path)") {
            openat(parent, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        defer { close(fd) }
        try applyOwnerModeXattrs(fd: fd, entry: entry, path: path)
        directoryTimes.append((path, times(entry)))
    }

    func writeSymlink(parent: Int32, name: RawPath, path: RawPath, entry: OpaquePointer) throws {
        let linkTarget = (archive_entry_symlink(entry).map { RawPath(cString: $0) } ?? .root).c
        let cname = name.c
        _ = try createReplacing(parent: parent, name: name, path: path) { symlinkat(linkTarget, parent, cname) }
        let e = entry
        _ = try syscallChecked("fchownat", "\(path)") {
            fchownat(parent, cname, uid_t(archive_entry_uid(e)), gid_t(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW)
        }
        // lsetxattr through the parent's /proc path: the symlink itself, never its target.
        let via = RawPath(procFDPath(parent)).appending(name).c
        try forEachXattr(entry) { key, value, size in crisp_lsetxattr(via, key, value, size) }
        var ts = [times(entry).0, times(entry).1]
        _ = try syscallChecked("utimensat", "\(path)") { utimensat(parent, cname, &ts, AT_SYMLINK_NOFOLLOW) }
    }

    func writeSpecial(parent: Int32, name: RawPath, path: RawPath, type: UInt32, entry: OpaquePointer) throws {
        let major = UInt32(archive_entry_rdevmajor(entry)), minor = UInt32(archive_entry_rdevminor(entry))
        let cname = name.c
        _ = try createReplacing(parent: parent, name: name, path: path) {
            crisp_mknodat(parent, cname, mode_t(type) | 0o600, major, minor)
        }
        try applyNodeMetadata(parent: parent, name: name, path: path, entry: entry)
    }

    /// Owner, mode, xattrs and times of a node that must not be opened (device, FIFO): reached
    /// through an O_PATH fd, so nothing is followed and no device is opened.
    func applyNodeMetadata(parent: Int32, name: RawPath, path: RawPath, entry: OpaquePointer) throws {
        let cname = name.c
        let fd = try syscallChecked("openat", "\(path)") { openat(parent, cname, CRISP_O_PATH | O_NOFOLLOW | O_CLOEXEC) }
        defer { close(fd) }
        let e = entry
        _ = try syscallChecked("fchownat", "\(path)") {
            fchownat(parent, cname, uid_t(archive_entry_uid(e)), gid_t(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW)
        }
        let via = procFDPath(fd)
        _ = try syscallChecked("chmod", "\(path)") { chmod(via, archive_entry_perm(e) & 0o7777) }
        try forEachXattr(entry) { key, value, size in crisp_setxattr(via, key, value, size) }
        var ts = [times(entry).0, times(entry).1]
        _ = try syscallChecked("utimensat", "\(path)") { utimensat(parent, cname, &ts, AT_SYMLINK_NOFOLLOW) }
    }

    /// Owner first (chown clears setuid bits and file capabilities), then mode, then xattrs.
    func applyOwnerModeXattrs(fd: Int32, entry: OpaquePointer, path: RawPath) throws {
        let e = entry
        _ = try syscallChecked("fchown", "\(path)") { fchown(fd, uid_t(archive_entry_uid(e)), gid_t(archive_entry_gid(e))) }
        _ = try syscallChecked("fchmod", "\(path)") { fchmod(fd, archive_entry_perm(e) & 0o7777) }
        try forEachXattr(entry) { key, value, size in crisp_fsetxattr(fd, key, value, size) }
    }

    /// Calls `set` for each xattr of the entry. `trusted.overlay.*` is refused: a layer must not
    /// forge overlayfs metadata (opaque, redirect, metacopy) other than through whiteout entries.
    func forEachXattr(_ entry: OpaquePointer, _ set: (String, UnsafeRawPointer?, Int) -> Int32) throws {
        guard archive_entry_xattr_reset(entry) > 0 else { return }
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
            guard let name else { continue }
            let key = String(cString: name)
            if key.hasPrefix("trusted.overlay.") { continue }
            if set(key, value, size) != 0 {
                throw SystemCallError("setxattr", "\(key) on \(archive_entry_pathname(entry).map { RawPath(cString: $0) } ?? .root)", errno: errno)
            }
        }
    }

    func times(_ entry: OpaquePointer) -> (timespec, timespec) {
        let m = timespec(tv_sec: archive_entry_mtime(entry), tv_nsec: archive_entry_mtime_nsec(entry))
        let a = archive_entry_atime_is_set(entry) != 0
            ? timespec(tv_sec: archive_entry_atime(entry), tv_nsec: archive_entry_atime_nsec(entry)) : m
        return (a, m)
    }
}
