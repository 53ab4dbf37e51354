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

    /// Reads a small file inside the root, at most `limit` bytes; nil when it cannot be opened.
    public func readSmallFile(_ relative: String, limit: Int = 4 << 20) -> String? {
        guard let fd = try? open(relative, flags: O_RDONLY) else { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = read(fd, &buf, min(buf.count, limit - out.count))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
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

    /// Creates `path` as directories inside `root`, resolving symlinks as the kernel would if
    /// `root` were `/` (what CRI-O gets from securejoin and MkdirAll): a link whose target does
    /// not exist yet gets that target created, inside the root.
    public func makeDirectories(_ path: String) throws {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let (dirfd, name) = try openParent(of: "/" + (resolved + [component]).joined(separator: "/"))
            defer { close(dirfd) }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(dirfd, name, &buffer, buffer.count - 1)
            if n >= 0 {
                links += 1
                guard links <= 40 else { throw SystemCallError("readlinkat", path, errno: ELOOP) }
                buffer[n] = 0
                let target = String(cString: buffer)
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            if mkdirat(dirfd, name, 0o755) != 0 && errno != EEXIST {
                throw SystemCallError("mkdirat", "/" + (resolved + [component]).joined(separator: "/"), errno: errno)
            }
            resolved.append(component)
        }
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
