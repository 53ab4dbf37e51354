import CrispCore
import CrispOS
import CCrispShim
import Glibc

extension EntryWriter {
    /// The lower layer directory whose copy of `path` the overlay merged view of this layer and
    /// its parents shows, or nil when the merged view has no such path. Follows overlayfs
    /// rules: layers are searched nearest first (this layer included); a whiteout device hides
    /// the name in every layer below, a non-directory stops the merge of a directory, and an
    /// opaque directory hides the directories of the same name below it.
    func visibleLowerLayer(of path: RawPath) throws -> String? {
        let components = path.components
        guard !components.isEmpty else { return nil }
        let layers = [target.root] + target.lowerRoots
        // Plain fds: SafeRoot is non-copyable and cannot sit in an array.
        var roots: [Int32] = []
        defer { for fd in roots { close(fd) } }
        for l in layers { roots.append(try syscallChecked("open", l) { open(l, CRISP_O_PATH | O_DIRECTORY | O_CLOEXEC) }) }
        // Indices of the layers whose directory at the current prefix takes part in the merge.
        var merged = Array(layers.indices)
        var prefix = RawPath.root
        for (k, component) in components.enumerated() {
            let here = prefix.appending(component)
            let last = k == components.count - 1
            var next: [Int] = []
            for i in merged {
                let fd = openInRoot(roots[i], here, CRISP_O_PATH | O_NOFOLLOW)
                guard fd >= 0 else { continue }
                defer { close(fd) }
                if isWhiteoutDevice(fd) { break }
                if last { return i == 0 ? nil : layers[i] }
                var st = stat()
                guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { break }
                next.append(i)
                if isOpaqueDirectory(roots[i], here) { break }
            }
            guard !next.isEmpty else { return nil }
            merged = next
            prefix = here
        }
        return nil
    }

    /// Whether `fd` (any node) is an overlay whiteout: a character device 0/0.
    func isWhiteoutDevice(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR && st.st_rdev == 0
    }

    /// openat2 below `rootfd` with the same resolution rules as `SafeRoot.open`; -1 on failure.
    func openInRoot(_ rootfd: Int32, _ path: RawPath, _ flags: Int32) -> Int32 {
        crisp_openat2(rootfd, path.c, UInt64(flags | O_CLOEXEC), 0, SafeRoot.resolveFlags)
    }

    func isOpaqueDirectory(_ rootfd: Int32, _ path: RawPath) -> Bool {
        let fd = openInRoot(rootfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var value: [UInt8] = [0, 0]
        return crisp_fgetxattr(fd, "trusted.overlay.opaque", &value, value.count) == 1 && value[0] == UInt8(ascii: "y")
    }
}
