public import CrispCore
import Glibc

/// Connecting to a unix socket by path, whatever the path's length: sun_path holds 107 bytes, and
/// conmon's attach sockets under a long run root can be longer. The directory is opened with
/// O_PATH and the socket reached through /proc/self/fd/N/NAME, which is always short.
public enum UnixSocket {
    /// O_PATH (Linux, every architecture Swift runs on); Glibc's module leaves it out without _GNU_SOURCE.
    static let oPath: Int32 = 0o10000000

    public static func connect(path: String, seqpacket: Bool) throws(CrispError) -> Int32 {
        let slash = path.lastIndex(of: "/") ?? path.startIndex
        let directory = path[..<slash].isEmpty ? "/" : String(path[..<slash])
        let name = String(path[path.index(after: slash)...])
        let dirfd = open(directory, oPath | O_CLOEXEC | O_DIRECTORY)
        guard dirfd >= 0 else {
            let e = errno
            throw CrispError(e == ENOENT ? .notFound : .internal, "cannot reach socket \(path)", cause: SystemCallError("open", directory, errno: e))
        }
        defer { close(dirfd) }
        let type = Int32(seqpacket ? SOCK_SEQPACKET.rawValue : SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(AF_UNIX, type, 0)
        guard fd >= 0 else { throw CrispError(.internal, "cannot create a socket for \(path)", cause: SystemCallError("socket", path, errno: errno)) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let short = Array("/proc/self/fd/\(dirfd)/\(name)".utf8)
        guard short.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw .invalidArgument("socket name \(name) is too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in short.enumerated() { raw[i] = b }
            raw[short.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw CrispError(e == ENOENT || e == ECONNREFUSED ? .notFound : .internal, "cannot connect to \(path)",
                             cause: SystemCallError("connect", path, errno: e))
        }
        return fd
    }
}
