public import CrispCore
import Glibc

/// TCP connections to the host's loopback (host-network pods' port forwarding, test backends).
public enum TCPLoopback {
    /// Connects to 127.0.0.1:`port` and returns the close-on-exec descriptor; the caller owns it.
    /// A blocking connect on loopback answers at once (accepted or refused), so no thread hop is
    /// needed. Nothing listening is `unavailable`.
    public static func connect(port: Int) throws(CrispError) -> Int32 {
        guard (1...65535).contains(port) else { throw .invalidArgument("port \(port) is not in 1…65535") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw CrispError(.internal, "cannot dial port \(port) on the host", cause: SystemCallError("socket", "AF_INET", errno: errno))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw CrispError(e == ECONNREFUSED ? .unavailable : .internal, "cannot connect to 127.0.0.1:\(port) on the host",
                             cause: SystemCallError("connect", "127.0.0.1:\(port)", errno: e))
        }
        return fd
    }
}
