import CrispCore
import Foundation

/// An exclusive `flock` on `<root>/crispd.lock`, held for the daemon's life, so that two crispd
/// never share one root. The holder's pid is written into the file for the error message.
final class DaemonLock: Sendable {
    let path: String
    let fd: Int32

    init(path: String) throws(CrispError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CrispError(.internal, "cannot open lock file \(path)", cause: SystemCallError("open", path, errno: errno))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, buf.count, 0)
            let holder = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
            close(fd)
            if e == EWOULDBLOCK {
                throw CrispError(.failedPrecondition,
                                 "another crispd (pid \(holder)) already uses this root: \(path) is locked; stop it or choose another --root")
            }
            throw CrispError(.internal, "cannot lock \(path)", cause: SystemCallError("flock", path, errno: e))
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }
}
