import CrispCore
import CrispOS
import CCrispShim
import Glibc

extension EntryWriter {
    /// A hard link to `linkTarget` (a path inside the layer). The target is opened with
    /// RESOLVE_IN_ROOT and O_NOFOLLOW and linked by fd (AT_EMPTY_PATH), so the link can only
    /// reach an inode inside the root. With overlay, a target that lives in a lower layer is
    /// first copied up into this layer (a hard link cannot span layers) — but only when the
    /// merged view shows it: a target deleted or hidden by a whiteout or an opaque directory of
    /// a layer in between does not exist, and the link fails as it would with tar.
    func writeHardLink(parent: Int32, name: RawPath, path: RawPath, target linkTarget: RawPath) throws {
        guard !linkTarget.isEmpty else { throw CrispError.invalidArgument("hard link \"\(path)\" has an empty target") }
        if linkTarget == path { return }
        let missing = CrispError.invalidArgument(
            "hard link \"\(path)\" names \"\(linkTarget)\", which does not exist in the layer or below it (never created, or removed by a whiteout)")
        var source: Int32
        do {
            source = try root.open(raw: linkTarget, flags: CRISP_O_PATH | O_NOFOLLOW)
            if target.whiteouts == .overlay, isWhiteoutDevice(source) {
                close(source)
                throw missing
            }
        } catch let e as SystemCallError where (e.errno == ENOENT || e.errno == ENOTDIR) && !target.lowerRoots.isEmpty {
            guard let lower = try visibleLowerLayer(of: linkTarget) else { throw missing }
            try copyUp(linkTarget, from: lower)
            source = try root.open(raw: linkTarget, flags: CRISP_O_PATH | O_NOFOLLOW)
        } catch let e as SystemCallError where e.errno == ENOENT || e.errno == ENOTDIR {
            throw missing
        }
        defer { close(source) }
        // copyUp may have replaced the cached parent; reopen it.
        let parent = try parentFD(path.split.dir)
        let cname = name.c
        _ = try createReplacing(parent: parent, name: name, path: path) {
            linkat(source, "", parent, cname, CRISP_AT_EMPTY_PATH)
        }
    }

    /// Copies the regular file `path` from the lower layer directory `lower` into this layer,
    /// with its owner, mode, xattrs and times.
    func copyUp(_ path: RawPath, from lower: String) throws {
        let lowerRoot = try SafeRoot(path: lower)
        let src = try lowerRoot.open(raw: path, flags: O_RDONLY | O_NOFOLLOW)
        defer { close(src) }
        var st = stat()
        _ = try syscallChecked("fstat", "\(lower)/\(path)") { fstat(src, &st) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw CrispError.invalidArgument("hard link target \"\(path)\" in a lower layer is not a regular file")
        }
        let parent = try parentFD(path.split.dir)
        let name = path.split.name.c
        let dst = try syscallChecked("openat", "\(target.root)/\(path)") {
            openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        }
        defer { close(dst) }
        var remaining = Int(st.st_size)
        while remaining > 0 {
            let n = try syscallChecked("copy_file_range", "\(path)") { crisp_copy_file_range(src, dst, remaining) }
            if n == 0 { break }
            remaining -= n
        }
        _ = try syscallChecked("fchown", "\(path)") { fchown(dst, st.st_uid, st.st_gid) }
        _ = try syscallChecked("fchmod", "\(path)") { fchmod(dst, st.st_mode & 0o7777) }
        try copyXattrs(from: src, to: dst, path: path)
        var ts = [st.st_atim, st.st_mtim]
        _ = try syscallChecked("futimens", "\(path)") { futimens(dst, &ts) }
        inodes += 1
        contentBytes += Int64(st.st_size)
    }

    func copyXattrs(from src: Int32, to dst: Int32, path: RawPath) throws {
        var names = [CChar](repeating: 0, count: 65536)
        let len = crisp_flistxattr(src, &names, names.count)
        guard len > 0 else { return }
        var value = [UInt8](repeating: 0, count: 65536)
        var start = 0
        for i in 0..<len where names[i] == 0 {
            let key = names[start..<i].withUnsafeBufferPointer { String(decoding: UnsafeRawBufferPointer($0), as: UTF8.self) }
            start = i + 1
            let n = crisp_fgetxattr(src, key, &value, value.count)
            if n < 0 { continue }
            if crisp_fsetxattr(dst, key, value, n) != 0 {
                throw SystemCallError("fsetxattr", "\(key) on \(target.root)/\(path)", errno: errno)
            }
        }
    }

    // MARK: - whiteouts

    func applyWhiteout(dir: RawPath, name: RawPath) throws {
        if name == RawPath(".wh..wh..opq") {
            try applyOpaque(dir: dir)
            return
        }
        if name.hasPrefix(".wh..wh.") { return }  // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        let victim = name.dropFirst(4)
        guard !victim.isEmpty, victim != RawPath("."), victim != RawPath("..") else {
            throw CrispError.invalidArgument("invalid whiteout \"\(dir)/\(name)\"")
        }
        switch target.whiteouts {
        case .overlay:
            let parent = try parentFD(dir)
            let cvictim = victim.c
            _ = try createReplacing(parent: parent, name: victim, path: dir.appending(victim)) {
                crisp_mknodat(parent, cvictim, mode_t(S_IFCHR), 0, 0)
            }
            inodes += 1
        case .remove:
            guard let parent = try? root.open(raw: dir, flags: O_RDONLY | O_DIRECTORY) else { return }
            defer { close(parent) }
            try DirectoryWalk.removeAll(in: parent, name: victim, subject: "\(target.root)/\(dir)")
        }
    }

    func applyOpaque(dir: RawPath) throws {
        switch target.whiteouts {
        case .overlay:
            _ = try parentFD(dir)  // creates it when missing
            let fd = try root.open(raw: dir, flags: O_RDONLY | O_DIRECTORY)
            defer { close(fd) }
            if crisp_fsetxattr(fd, "trusted.overlay.opaque", "y", 1) != 0 {
                throw SystemCallError("fsetxattr", "trusted.overlay.opaque on \(target.root)/\(dir)", errno: errno)
            }
        case .remove:
            guard let fd = try? root.open(raw: dir, flags: O_RDONLY | O_DIRECTORY) else { return }
            defer { close(fd) }
            try removeNotWritten(dirfd: fd, dir: dir)
        }
    }

    /// Removes what the parent layers put in `dir`, keeping entries this layer wrote.
    private func removeNotWritten(dirfd: Int32, dir: RawPath) throws {
        for (child, type) in try DirectoryWalk.entries(of: dirfd, subject: "\(target.root)/\(dir)") {
            let childPath = dir.appending(child)
            if !written.contains(childPath) {
                try DirectoryWalk.removeAll(in: dirfd, name: child, subject: "\(target.root)/\(dir)")
            } else if type == UInt8(DT_DIR) {
                let cchild = child.c
                let fd = try syscallChecked("openat", "\(childPath)") { openat(dirfd, cchild, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                defer { close(fd) }
                try removeNotWritten(dirfd: fd, dir: childPath)
            }
        }
    }
}
