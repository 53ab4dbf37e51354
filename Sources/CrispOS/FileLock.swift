import CrispCore
import CCrispShim
import Glibc
import Synchronization

/// An exclusive advisory lock (flock) on a file, held until `unlock()` or the process exits, so
/// that two daemons never share one storage root. The kernel drops the lock if the process dies.
public final class FileLock: Sendable {
    public let path: String
    private let fd: Mutex<Int32>

    /// Takes the lock; throws `failedPrecondition` naming the file when another holder keeps it
    /// past `grace`.
    ///
    /// Why a grace at all: a flock belongs to the open file description, and a child between
    /// `clone` and `exec` (any spawn by any thread of this process) shares every description,
    /// O_CLOEXEC or not, until its exec. A lock this process has just released can so still be
    /// held for a moment by nobody that matters. No event tells when that child execs, and a
    /// blocking flock cannot be bounded, so a busy lock is retried with a short backoff; the
    /// retries happen only on this failure path.
    public init(exclusive path: String, grace: Duration = .seconds(1)) throws {
        self.path = path
        let fd = try syscallChecked("open", path) { Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        let deadline = ContinuousClock.now + grace
        var pause = Duration.milliseconds(1)
        while crisp_flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EWOULDBLOCK, ContinuousClock.now + pause <= deadline {
                let (s, atto) = pause.components
                var ts = timespec(tv_sec: Int(s), tv_nsec: Int(atto / 1_000_000_000))
                var left = timespec()
                while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
                pause = min(pause * 2, .milliseconds(100))
                continue
            }
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
