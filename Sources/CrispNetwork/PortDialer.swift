public import CrispCore
import CrispOS
import Glibc

/// Opens TCP connections inside a pod's network namespace for port forwarding.
///
/// The connection is made by `crisp-pinns dial`, which setns's into the pod's netns, connects,
/// and passes the connected socket back over a unix socketpair with SCM_RIGHTS. Why not setns on a
/// dedicated thread of crispd: it would work for a thread we own, but a thread that fails to
/// switch back stays in the pod's namespace for good (it must then be leaked), every Swift
/// runtime/Foundation helper on that thread would see the wrong network, and ARCHITECTURE.md keeps
/// all namespace changes out of the daemon. The cost is one helper spawn per connection (a few
/// milliseconds), which port-forward sessions tolerate.
public struct PortDialer: Sendable {
    public var pinnsPath: String
    public var timeout: Duration

    public init(pinnsPath: String, timeout: Duration = .seconds(10)) {
        self.pinnsPath = pinnsPath
        self.timeout = timeout
    }

    /// Connects to `host:port` (default 127.0.0.1) inside the network namespace pinned at
    /// `netnsPath` and returns the connected, close-on-exec descriptor; the caller owns it.
    /// Throws `unavailable` when nothing listens there, `notFound` when the netns does not exist.
    public func dial(netnsPath: String, port: Int, host: String = "127.0.0.1") async throws(CrispError) -> Int32 {
        guard (1...65535).contains(port) else { throw .invalidArgument("port \(port) is not in 1…65535") }
        guard access(netnsPath, F_OK) == 0 else { throw .notFound("network namespace \(netnsPath) does not exist") }
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw CrispError(.internal, "cannot dial port \(port) in \(netnsPath)",
                             cause: SystemCallError("socketpair", netnsPath, errno: errno))
        }
        defer { close(sv[0]) }
        // The helper's fd 0 is its end of the socketpair; ours stays open across the run.
        var o = Spawn.Options(path: pinnsPath, arguments: ["dial", "--netns", netnsPath, "--port", String(port), "--host", host],
                              environment: [])
        o.descriptors[0] = sv[1]
        let out: Spawn.Output
        do {
            out = try await Spawn.run(o, timeout: timeout)
            close(sv[1])
        } catch {
            close(sv[1])
            throw error
        }
        if out.timedOut { throw CrispError(.deadlineExceeded, "dialing port \(port) in \(netnsPath) took longer than \(timeout)") }
        guard out.status == 0 else {
            let msg = String(decoding: out.stderr, as: UTF8.self).trimmingSpaces
            let code: CrispError.Code = msg.contains("Connection refused") ? .unavailable : .internal
            throw CrispError(code, "cannot connect to \(host):\(port) in \(netnsPath): \(msg)")
        }
        // The helper has exited, so its message is already queued: receive without blocking.
        guard let fd = receiveDescriptor(sv[0]) else {
            throw CrispError(.internal, "crisp-pinns dial for port \(port) in \(netnsPath) exited without passing a descriptor",
                             cause: SystemCallError("recvmsg", netnsPath, errno: errno))
        }
        return fd
    }
}

/// Receives one descriptor sent with SCM_RIGHTS; nil when none is queued.
func receiveDescriptor(_ sock: Int32) -> Int32? {
    var byte: UInt8 = 0
    let space = MemoryLayout<cmsghdr>.stride + 16
    let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: MemoryLayout<cmsghdr>.alignment)
    defer { control.deallocate() }
    control.initializeMemory(as: UInt8.self, repeating: 0, count: space)
    return withUnsafeMutablePointer(to: &byte) { bp -> Int32? in
        var iov = iovec(iov_base: UnsafeMutableRawPointer(bp), iov_len: 1)
        return withUnsafeMutablePointer(to: &iov) { iovp -> Int32? in
            var msg = msghdr()
            msg.msg_iov = iovp
            msg.msg_iovlen = 1
            msg.msg_control = control
            msg.msg_controllen = space
            var n: Int
            repeat { n = recvmsg(sock, &msg, Int32(MSG_DONTWAIT) | Int32(MSG_CMSG_CLOEXEC)) } while n < 0 && errno == EINTR
            guard n == 1, msg.msg_controllen >= MemoryLayout<cmsghdr>.size else { return nil }
            let hdr = control.load(as: cmsghdr.self)
            guard hdr.cmsg_level == SOL_SOCKET, hdr.cmsg_type == Int32(SCM_RIGHTS) else { return nil }
            // CMSG_DATA: the payload follows the header, aligned to size_t.
            let dataOffset = (MemoryLayout<cmsghdr>.size + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1)
            return control.load(fromByteOffset: dataOffset, as: Int32.self)
        }
    }
}
