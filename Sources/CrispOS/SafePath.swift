import CrispCore
import CCrispShim
import Glibc

/// An open directory used as a root: every lookup below it goes through openat2(2) with
/// RESOLVE_IN_ROOT, so `..`, absolute paths and symlinks (including symlinked parent directories
/// placed by an attacker) resolve as if the directory were `/` and can never leave it. Magic
/// links (/proc/self/fd/N) are refused. A string check cannot give this guarantee because the
/// tree may change between the check and the use.
///
/// Not safe to share between threads while `close()` may run; each user owns its instance.
public struct SafeRoot: ~Copyable {
    public let fd: Int32
    public let path: String

    /// Opens `path` (which must be a directory) as a root.
    public init(path: String) throws {
        self.path = path
        self.fd = try syscallChecked("open", path) { Glibc.open(path, CRISP_O_PATH | O_DIRECTORY | O_CLOEXEC) }
    }

    /// Wraps an fd the caller already owns; it is closed with this value.
    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    public static let resolveFlags = UInt64(CRISP_RESOLVE_IN_ROOT | CRISP_RESOLVE_NO_MAGICLINKS)

    /// Opens `relative` inside the root. Leading `/` and `..` stay inside. Add `O_NOFOLLOW` to
    /// refuse a symlink as the last component.
    public func open(_ relative: String, flags: Int32, mode: UInt32 = 0) throws -> Int32 {
        let fd = self.fd
        let rel = relative.isEmpty ? "." : relative
        return try syscallChecked("openat2", "\(path)/\(rel)") {
            crisp_openat2(fd, rel, UInt64(flags | O_CLOEXEC), UInt64(mode), Self.resolveFlags)
        }
    }

    /// Opens the directory that holds the last component of `relative` and returns it with that
    /// component's name. `relative` must name something below the root (not the root itself).
    public func openParent(of relative: String) throws -> (dirfd: Int32, name: String) {
        let (dir, name) = splitPath(relative)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw SystemCallError("openParent", "\(path)/\(relative)", errno: EINVAL)
        }
        let dfd = try open(dir, flags: CRISP_O_PATH | O_DIRECTORY)
        return (dfd, name)
    }
}

/// Splits "a/b/c" into ("a/b", "c"), ignoring trailing slashes; ("", "c") for a single component.
public func splitPath(_ p: String) -> (dir: String, name: String) {
    var s = Substring(p)
    while s.count > 1, s.hasSuffix("/") { s = s.dropLast() }
    guard let slash = s.lastIndex(of: "/") else { return ("", String(s)) }
    return (String(s[..<slash]), String(s[s.index(after: slash)...]))
}

/// The /proc path of an open fd; used to reach an CRISP_O_PATH fd with calls that take only paths
/// (chmod, setxattr) without following anything a layer put on disk.
public func procFDPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }
