import CrispCore
import CCrispShim
import Glibc
import Synchronization

/// An exclusive advisory lock (flock) on a file, held until `unlock()` or the process exits, so
/// that two daemons never share one storage root. The kernel drops the lock if the process dies.
public final class FileLock: Sendable {
    public let path: String
    private let fd: Mutex<Int32>

    /// Takes the lock without waiting; throws `failedPrecondition` naming the file when another
    /// process holds it.
    public init(exclusive path: String) throws {
        self.path = path
        let fd = try syscallChecked("open", path) { Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        if crisp_flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            close(fd)
            if e == EWOULDBLOCK {
                throw CrispError(.failedPrecondition, "\(path) is locked by another process: is another crispd using this storage root?")
            }
            throw CrispError(.internal, "cannot lock \(path)", cause: SystemCallError("flock", path, errno: e))
        }
        self.fd = Mutex(fd)
    }

    /// Releases the lock (closing the file); idempotent.
    public func unlock() {
        fd.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { unlock() }
}
