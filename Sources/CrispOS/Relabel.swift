public import CrispCore
import CCrispShim
import Glibc

/// Sets one extended attribute (SELinux's `security.selinux` in practice) on a tree, for a
/// volume that asks to be relabelled. Descriptor-based: every directory is opened with
/// O_NOFOLLOW below the one before, so a symlink swapped in while the walk runs (a container may
/// be writing to the volume) cannot send it outside the tree; symlinks themselves are skipped.
public enum Relabel {
    public static func tree(_ path: String, attribute: String, value: String) throws(CrispError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw .invalidArgument("relabel \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try label(fd: fd, path: path, attribute: attribute, value: value)
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .internal("relabel \(path): fstat: \(String(cString: strerror(errno)))") }
        if st.st_mode & S_IFMT == S_IFDIR { try walk(fd, path: path, attribute: attribute, value: value) }
    }

    static func label(fd: Int32, path: String, attribute: String, value: String) throws(CrispError) {
        let rc = value.withCString { crisp_fsetxattr(fd, attribute, $0, strlen($0)) }
        guard rc == 0 else { throw .internal("relabel \(path): set \(attribute): \(String(cString: strerror(errno)))") }
    }

    static func walk(_ dirfd: Int32, path: String, attribute: String, value: String) throws(CrispError) {
        let entries: [(name: RawPath, type: UInt8)]
        do { entries = try DirectoryWalk.entries(of: dirfd, subject: path) } catch {
            throw .internal("relabel \(path): \(error)")
        }
        for e in entries where e.type != UInt8(DT_LNK) {
            let child = path + "/" + e.name.description
            let isDir = e.type == UInt8(DT_DIR)
            // O_PATH reaches sockets, fifos and devices without opening them; fsetxattr needs a
            // real descriptor, so those get the attribute through their /proc/self/fd link.
            let fd = openat(dirfd, e.name.c, (isDir ? O_RDONLY | O_DIRECTORY : crisp_o_path()) | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT || errno == ELOOP { continue }  // removed or replaced by a link meanwhile
                throw .internal("relabel \(child): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            if isDir {
                try label(fd: fd, path: child, attribute: attribute, value: value)
                try walk(fd, path: child, attribute: attribute, value: value)
            } else {
                let rc = value.withCString { crisp_setxattr("/proc/self/fd/\(fd)", attribute, $0, strlen($0)) }
                guard rc == 0 else { throw .internal("relabel \(child): set \(attribute): \(String(cString: strerror(errno)))") }
            }
        }
    }
}
