import CrispCore
import CrispOS
import CCrispShim
import Glibc

extension EntryWriter {
    /// A hard link to `linkTarget` (a path inside the layer). The target is opened with
    /// RESOLVE_IN_ROOT and O_NOFOLLOW and linked by fd (AT_EMPTY_PATH), so the link can only
    /// reach an inode inside the root. With overlay, a target that lives in a lower layer is
    /// first copied up into this layer (a hard link cannot span layers).
    func writeHardLink(parent: Int32, name: String, path: String, target linkTarget: String) throws {
        guard !linkTarget.isEmpty else { throw CrispError.invalidArgument("hard link \"\(path)\" has an empty target") }
        if linkTarget == path { return }
        var source: Int32
        do {
            source = try root.open(linkTarget, flags: CRISP_O_PATH | O_NOFOLLOW)
        } catch let e as SystemCallError where e.errno == ENOENT && !target.lowerRoots.isEmpty {
            try copyUp(linkTarget)
            source = try root.open(linkTarget, flags: CRISP_O_PATH | O_NOFOLLOW)
        } catch let e as SystemCallError where e.errno == ENOENT {
            throw CrispError.invalidArgument("hard link \"\(path)\" names \"\(linkTarget)\", which is not in the layer or below it")
        }
        defer { close(source) }
        // copyUp may have replaced the cached parent; reopen it.
        let parent = try parentFD(splitPath(path).dir)
        _ = try createReplacing(parent: parent, name: name, path: path) {
            linkat(source, "", parent, name, CRISP_AT_EMPTY_PATH)
        }
    }

    /// Copies the regular file `path` from the nearest lower layer into this layer, with its
    /// owner, mode, xattrs and times.
    func copyUp(_ path: String) throws {
        for lower in target.lowerRoots {
            let lowerRoot = try SafeRoot(path: lower)
            guard let src = try? lowerRoot.open(path, flags: O_RDONLY | O_NOFOLLOW) else { continue }
            defer { close(src) }
            var st = stat()
            _ = try syscallChecked("fstat", "\(lower)/\(path)") { fstat(src, &st) }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw CrispError.invalidArgument("hard link target \"\(path)\" in a lower layer is not a regular file")
            }
            let parent = try parentFD(splitPath(path).dir)
            let name = splitPath(path).name
            let dst = try syscallChecked("openat", "\(target.root)/\(path)") {
                openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            }
            defer { close(dst) }
            var remaining = Int(st.st_size)
            while remaining > 0 {
                let n = try syscallChecked("copy_file_range", path) { crisp_copy_file_range(src, dst, remaining) }
                if n == 0 { break }
                remaining -= n
            }
            _ = try syscallChecked("fchown", path) { fchown(dst, st.st_uid, st.st_gid) }
            _ = try syscallChecked("fchmod", path) { fchmod(dst, st.st_mode & 0o7777) }
            try copyXattrs(from: src, to: dst, path: path)
            var ts = [st.st_atim, st.st_mtim]
            _ = try syscallChecked("futimens", path) { futimens(dst, &ts) }
            inodes += 1
            contentBytes += Int64(st.st_size)
            return
        }
        throw CrispError.invalidArgument("hard link target \"\(path)\" exists in no layer")
    }

    func copyXattrs(from src: Int32, to dst: Int32, path: String) throws {
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

    func applyWhiteout(dir: String, name: String) throws {
        if name == ".wh..wh..opq" {
            try applyOpaque(dir: dir)
            return
        }
        if name.hasPrefix(".wh..wh.") { return }  // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        let victim = String(name.dropFirst(4))
        guard !victim.isEmpty, victim != ".", victim != ".." else {
            throw CrispError.invalidArgument("invalid whiteout \"\(dir)/\(name)\"")
        }
        switch target.whiteouts {
        case .overlay:
            let parent = try parentFD(dir)
            let victimPath = dir.isEmpty ? victim : dir + "/" + victim
            _ = try createReplacing(parent: parent, name: victim, path: victimPath) {
                crisp_mknodat(parent, victim, mode_t(S_IFCHR), 0, 0)
            }
            inodes += 1
        case .remove:
            guard let parent = try? root.open(dir, flags: O_RDONLY | O_DIRECTORY) else { return }
            defer { close(parent) }
            try DirectoryWalk.removeAll(in: parent, name: victim, subject: "\(target.root)/\(dir)")
        }
    }

    func applyOpaque(dir: String) throws {
        switch target.whiteouts {
        case .overlay:
            _ = try parentFD(dir)  // creates it when missing
            let fd = try root.open(dir, flags: O_RDONLY | O_DIRECTORY)
            defer { close(fd) }
            if crisp_fsetxattr(fd, "trusted.overlay.opaque", "y", 1) != 0 {
                throw SystemCallError("fsetxattr", "trusted.overlay.opaque on \(target.root)/\(dir)", errno: errno)
            }
        case .remove:
            guard let fd = try? root.open(dir, flags: O_RDONLY | O_DIRECTORY) else { return }
            defer { close(fd) }
            try removeNotWritten(dirfd: fd, dir: dir)
        }
    }

    /// Removes what the parent layers put in `dir`, keeping entries this layer wrote.
    private func removeNotWritten(dirfd: Int32, dir: String) throws {
        for (child, type) in try DirectoryWalk.entries(of: dirfd, subject: "\(target.root)/\(dir)") {
            let childPath = dir.isEmpty ? child : dir + "/" + child
            if !written.contains(childPath) {
                try DirectoryWalk.removeAll(in: dirfd, name: child, subject: "\(target.root)/\(dir)")
            } else if type == UInt8(DT_DIR) {
                let fd = try syscallChecked("openat", childPath) { openat(dirfd, child, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                defer { close(fd) }
                try removeNotWritten(dirfd: fd, dir: childPath)
            }
        }
    }
}
