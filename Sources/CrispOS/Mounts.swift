import CrispCore
import CCrispShim
import Glibc

/// Mount helpers. Every mount crisp makes is private (no propagation to or from the host), so a
/// container's rootfs never shows up in other mount namespaces' views.
public enum Mounts {
    public static func mount(source: String, target: String, type: String, flags: UInt = 0, data: String? = nil) throws {
        let r: Int32
        if let data {
            r = crisp_mount(source, target, type, flags, data)
        } else {
            r = crisp_mount(source, target, type, flags, nil)
        }
        if r != 0 {
            let what = data.map { " (\(type), \($0.count) bytes of options)" } ?? " (\(type))"
            throw SystemCallError("mount", target + what, errno: errno)
        }
        // Best effort: a bind/overlay mount under a shared parent would propagate otherwise.
        _ = crisp_mount("", target, nil, crisp_ms_private(), nil)
    }

    /// A tmpfs no program on it can be run from, nor gain privileges through (nosuid, nodev,
    /// noexec): a pod's /dev/shm.
    public static func mountSecureTmpfs(at target: String, options: String) throws {
        try mount(source: "shm", target: target, type: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC), data: options)
    }

    /// Unmounts `target`; a target that is not mounted is not an error. With `detach`, lazily
    /// (MNT_DETACH) so a busy mount cannot block clean-up.
    public static func unmount(_ target: String, detach: Bool = false) throws {
        if crisp_umount2(target, detach ? crisp_mnt_detach() : 0) != 0 {
            let e = errno
            if e == EINVAL || e == ENOENT { return }  // not a mount point / gone
            throw SystemCallError("umount2", target, errno: e)
        }
    }

    /// The mount points of this process's mount namespace, from /proc/self/mountinfo, with octal
    /// escapes (\040 for space) decoded.
    public static func mountPoints() throws -> [String] {
        guard let text = readSmallFile("/proc/self/mountinfo") else {
            throw SystemCallError("open", "/proc/self/mountinfo", errno: errno)
        }
        var result: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            if fields.count > 4 { result.append(unescape(fields[4])) }
        }
        return result
    }

    /// Mount points at or below `prefix`, deepest first (the order they must be unmounted in).
    public static func mountPoints(under prefix: String) throws -> [String] {
        let p = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        return try mountPoints().filter { $0 == p || $0.hasPrefix(p + "/") }.sorted { $0.count > $1.count }
    }

    /// How the mount holding `path` propagates, from the optional fields of its mountinfo line.
    public enum Propagation: Sendable, Equatable { case shared, slave, `private` }

    /// The mount point that holds `path` (which must be absolute and free of symlinks) and its
    /// propagation; the last mount over the longest matching mount point wins.
    public static func propagation(of path: String, mountinfo: String) -> (mountPoint: String, propagation: Propagation)? {
        var best: (String, Propagation)?
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 6 else { continue }
            let point = unescape(fields[4])
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            guard inside, point.count >= (best?.0.count ?? 0) else { continue }
            var optional = fields[6...].prefix { $0 != "-" }
            optional = optional.filter { !$0.isEmpty }
            let p: Propagation = optional.contains { $0.hasPrefix("shared:") } ? .shared
                : (optional.contains { $0.hasPrefix("master:") } ? .slave : .private)
            best = (point, p)
        }
        return best.map { (mountPoint: $0.0, propagation: $0.1) }
    }

    public static func isMountPoint(_ path: String) throws -> Bool {
        try mountPoints().contains(path)
    }

    static func unescape(_ s: Substring) -> String {
        guard s.contains("\\") else { return String(s) }
        var out: [UInt8] = []
        let b = Array(s.utf8)
        var i = 0
        while i < b.count {
            if b[i] == 92, i + 3 < b.count,
               let v = UInt8(String(decoding: b[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else { out.append(b[i]); i += 1 }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
