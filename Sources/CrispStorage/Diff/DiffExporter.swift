import CrispCore
import CrispOS
import CArchive
import CCrispShim
import Glibc

/// Turns a layer's changes (see `ChangesSource`) into an OCI layer tar: added and changed
/// entries with owner, mode, mtime, xattrs, device numbers and symlink targets; deletions as
/// `.wh.NAME`; an overlay opaque directory as `DIR/.wh..wh..opq`. Files hard-linked to each
/// other within the diff stay hard links. Names are bytes throughout (non-UTF-8 names survive).
///
/// Synchronous and blocking (run it on a thread of its own). The layer must not change while it
/// is read (stop or pause the container); a file that does change is read as it is at that moment.
final class DiffExporter {
    private let writer: TarStreamWriter
    /// First path written for each multiply-linked inode (device, inode).
    private var linkPaths: [InodeKey: RawPath] = [:]
    /// Unchanged directories (copy drivers) above the current position, outermost first. They
    /// are written just before the first change below them: applying that change alters the
    /// directory's mtime, so the tar must carry the directory to restore it.
    private var pendingDirectories: [(dirfd: Int32, name: RawPath, path: RawPath, st: stat)] = []

    struct InodeKey: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    /// nil: deletions are written as whiteout files (an OCI layer). Otherwise they are collected
    /// here instead, as CRI-O's checkpoint archives list them (`deleted.files`): a removed name,
    /// and an opaque directory (whose old contents are gone), as paths relative to the root.
    private(set) var deletions: [RawPath]?
    /// Paths left out with everything below them (bind-mount targets, /proc and the like).
    private let excluded: [RawPath]

    init(writer: TarStreamWriter, collectDeletions: Bool = false, excluding: [RawPath] = []) {
        self.writer = writer
        self.deletions = collectDeletions ? [] : nil
        self.excluded = excluding
    }

    private func isExcluded(_ path: RawPath) -> Bool {
        excluded.contains { path == $0 || path.bytes.starts(with: $0.bytes + [UInt8(ascii: "/")]) }
    }

    func export(_ source: ChangesSource) throws {
        switch source {
        case .overlayUpper(let upper):
            let fd = try openDirectory(upper)
            defer { close(fd) }
            try walkUpper(dirfd: fd, dir: .root, subject: upper)
        case .compare(let layer, let parent):
            let lfd = try openDirectory(layer)
            defer { close(lfd) }
            let pfd = try parent.map(openDirectory)
            defer { if let pfd { close(pfd) } }
            try walkCompare(layerFD: lfd, parentFD: pfd, dir: .root, subject: layer)
        }
    }

    // MARK: - overlay

    private func walkUpper(dirfd: Int32, dir: RawPath, subject: String) throws {
        for (name, _) in try sortedEntries(dirfd, subject) {
            let path = dir.appending(name)
            guard let st = statAt(dirfd, name) else { continue }  // removed meanwhile
            let type = st.st_mode & Glibc.S_IFMT
            if type == Glibc.S_IFCHR && st.st_rdev == 0 {
                try deleted(path, whiteout: dir.appending(RawPath(Array(".wh.".utf8) + name.bytes)), like: st)
            } else if type == Glibc.S_IFDIR {
                try writeEntry(dirfd: dirfd, name: name, path: path, st: st)
                let child = try openDirectory(at: dirfd, name, subject)
                defer { close(child) }
                if isOpaque(child) {
                    try deleted(path, whiteout: path.appending(RawPath(".wh..wh..opq")), like: st)
                }
                try walkUpper(dirfd: child, dir: path, subject: subject)
            } else {
                try writeEntry(dirfd: dirfd, name: name, path: path, st: st)
            }
        }
    }

    private func isOpaque(_ dirfd: Int32) -> Bool {
        var value: [UInt8] = [0, 0]
        return crisp_fgetxattr(dirfd, "trusted.overlay.opaque", &value, value.count) == 1 && value[0] == UInt8(ascii: "y")
    }

    // MARK: - copy drivers

    /// Entries of the layer directory that are new or differ from the parent's, and whiteouts
    /// for the parent's entries the layer no longer has. `parentFD` nil: the whole subtree is new.
    private func walkCompare(layerFD: Int32, parentFD: Int32?, dir: RawPath, subject: String) throws {
        let entries = try sortedEntries(layerFD, subject)
        for (name, _) in entries {
            let path = dir.appending(name)
            guard let st = statAt(layerFD, name) else { continue }
            let old = parentFD.flatMap { statAt($0, name) }
            let isDir = (st.st_mode & Glibc.S_IFMT) == Glibc.S_IFDIR
            let sameType = old.map { ($0.st_mode & Glibc.S_IFMT) == (st.st_mode & Glibc.S_IFMT) } ?? false
            let unchanged = old.map { sameType && !changed(layerFD: layerFD, parentFD: parentFD!, name: name, new: st, old: $0) } ?? false
            if unchanged {
                // Its children may still differ.
                if isDir { pendingDirectories.append((layerFD, name, path, st)) }
            } else {
                try writeEntry(dirfd: layerFD, name: name, path: path, st: st)
            }
            if isDir {
                let child = try openDirectory(at: layerFD, name, subject)
                defer { close(child) }
                // Below a directory that replaced a non-directory everything is new.
                let parentChild = sameType ? try parentFD.map { try openDirectory(at: $0, name, subject) } : nil
                defer { if let parentChild { close(parentChild) } }
                try walkCompare(layerFD: child, parentFD: parentChild, dir: path, subject: subject)
                if pendingDirectories.last?.path == path { pendingDirectories.removeLast() }
            }
        }
        guard let parentFD else { return }
        let present = Set(entries.map(\.name))
        for (name, _) in try sortedEntries(parentFD, subject) where !present.contains(name) {
            guard let st = statAt(parentFD, name) else { continue }
            try deleted(dir.appending(name), whiteout: dir.appending(RawPath(Array(".wh.".utf8) + name.bytes)), like: st)
        }
    }

    /// Whether an entry of the same type differs in what a tar records. Content is judged by
    /// size and mtime (nanoseconds), as docker and containers/storage do: reading every file of
    /// both layers would make a diff cost as much as copying the image.
    private func changed(layerFD: Int32, parentFD: Int32, name: RawPath, new: stat, old: stat) -> Bool {
        if new.st_mode != old.st_mode || new.st_uid != old.st_uid || new.st_gid != old.st_gid { return true }
        if new.st_mtim.tv_sec != old.st_mtim.tv_sec || new.st_mtim.tv_nsec != old.st_mtim.tv_nsec { return true }
        switch new.st_mode & Glibc.S_IFMT {
        case Glibc.S_IFREG: if new.st_size != old.st_size { return true }
        case Glibc.S_IFLNK: if readLink(layerFD, name) != readLink(parentFD, name) { return true }
        case Glibc.S_IFCHR, Glibc.S_IFBLK: if new.st_rdev != old.st_rdev { return true }
        default: break
        }
        return !xattrs(layerFD, name).elementsEqual(xattrs(parentFD, name)) { $0.0 == $1.0 && $0.1 == $1.1 }
    }

    // MARK: - entries

    private func deleted(_ path: RawPath, whiteout: RawPath, like st: stat) throws {
        guard !isExcluded(path) else { return }
        if deletions != nil {
            deletions!.append(path)
        } else {
            try writeWhiteout(whiteout, like: st)
        }
    }

    private func writeEntry(dirfd: Int32, name: RawPath, path: RawPath, st: stat) throws {
        guard !isExcluded(path) else { return }
        try flushPendingDirectories()
        let type = st.st_mode & Glibc.S_IFMT
        if type == Glibc.S_IFSOCK { return }  // a socket cannot be carried in a tar
        guard let entry = archive_entry_new() else { throw CrispError.internal("archive_entry_new failed") }
        defer { archive_entry_free(entry) }
        archive_entry_copy_pathname(entry, path.c)
        archive_entry_set_perm(entry, st.st_mode & 0o7777)
        archive_entry_set_uid(entry, Int64(st.st_uid))
        archive_entry_set_gid(entry, Int64(st.st_gid))
        archive_entry_set_mtime(entry, st.st_mtim.tv_sec, st.st_mtim.tv_nsec)
        for (key, value) in xattrs(dirfd, name) {
            value.withUnsafeBytes { archive_entry_xattr_add_entry(entry, key, $0.baseAddress, $0.count) }
        }
        archive_entry_set_filetype(entry, UInt32(type))
        switch type {
        case Glibc.S_IFREG:
            if st.st_nlink > 1 {
                let key = InodeKey(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
                if let first = linkPaths[key] {
                    archive_entry_copy_hardlink(entry, first.c)
                    archive_entry_set_size(entry, 0)
                    try writer.write(entry, path: path)
                    return
                }
                linkPaths[key] = path
            }
            let cname = name.c
            let fd = try syscallChecked("openat", "\(path)") { openat(dirfd, cname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
            defer { close(fd) }
            archive_entry_set_size(entry, Int64(st.st_size))
            try writer.write(entry, path: path, contentFD: fd)
            return
        case Glibc.S_IFLNK:
            archive_entry_copy_symlink(entry, (readLink(dirfd, name) ?? .root).c)
        case Glibc.S_IFCHR, Glibc.S_IFBLK:
            archive_entry_set_rdevmajor(entry, dev_t(crisp_major(UInt64(st.st_rdev))))
            archive_entry_set_rdevminor(entry, dev_t(crisp_minor(UInt64(st.st_rdev))))
        default:
            break
        }
        try writer.write(entry, path: path)
    }

    /// An empty regular file named `.wh.NAME` (its owner and time from the deleted entry, which
    /// keeps the stream deterministic for a given tree).
    private func writeWhiteout(_ path: RawPath, like st: stat) throws {
        try flushPendingDirectories()
        try writer.writeWhiteout(at: path, mtime: st.st_mtim)
    }

    private func flushPendingDirectories() throws {
        guard !pendingDirectories.isEmpty else { return }
        let dirs = pendingDirectories
        pendingDirectories.removeAll()
        for d in dirs { try writeEntry(dirfd: d.dirfd, name: d.name, path: d.path, st: d.st) }
    }

    // MARK: - file system helpers

    private func sortedEntries(_ dirfd: Int32, _ subject: String) throws -> [(name: RawPath, type: UInt8)] {
        try DirectoryWalk.entries(of: dirfd, subject: subject).sorted { $0.name.bytes.lexicographicallyPrecedes($1.name.bytes) }
    }

    private func statAt(_ dirfd: Int32, _ name: RawPath) -> stat? {
        var st = stat()
        return fstatat(dirfd, name.c, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st : nil
    }

    private func openDirectory(_ path: String) throws -> Int32 {
        try syscallChecked("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    }

    private func openDirectory(at dirfd: Int32, _ name: RawPath, _ subject: String) throws -> Int32 {
        let cname = name.c
        return try syscallChecked("openat", "\(subject)/…/\(name)") { openat(dirfd, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
    }

    private func readLink(_ dirfd: Int32, _ name: RawPath) -> RawPath? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(dirfd, name.c, &buf, buf.count - 1)
        guard n >= 0 else { return nil }
        return RawPath(buf[0..<n].map { UInt8(bitPattern: $0) })
    }

    /// The entry's xattrs (without overlayfs' own `trusted.overlay.*`), sorted by name; read
    /// through the directory's /proc path with the l* calls, so a symlink's own are read and
    /// no device is opened.
    private func xattrs(_ dirfd: Int32, _ name: RawPath) -> [(String, [UInt8])] {
        let via = RawPath(procFDPath(dirfd)).appending(name).c
        guard let list = listXattrs(via), !list.isEmpty else { return [] }
        var out: [(String, [UInt8])] = []
        var value = [UInt8](repeating: 0, count: 65536)
        for raw in list.split(separator: 0) {
            let key = String(decoding: raw, as: UTF8.self)
            if key.hasPrefix("trusted.overlay.") { continue }
            let n = crisp_lgetxattr(via, key, &value, value.count)
            if n < 0 { continue }
            out.append((key, Array(value[0..<n])))
        }
        return out.sorted { $0.0 < $1.0 }
    }
}
