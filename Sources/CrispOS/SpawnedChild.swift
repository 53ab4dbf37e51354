import Glibc
import Synchronization

/// A spawned child, waited for through its pidfd (readable once it has exited). Signals go by
/// PID, and only until the child is reaped: after that the kernel may reuse the PID.
public final class SpawnedChild: Sendable {
    public let pid: Int32
    /// Readable once the child has exited (Linux ≥ 5.3).
    let pidfd: Int32
    /// The exit status once reaped.
    private let reaped = Mutex<Int32?>(nil)

    init(pid: Int32, pidfd: Int32) {
        self.pid = pid
        self.pidfd = pidfd
    }

    deinit { close(pidfd) }

    /// Sends `signal` unless the child has been reaped already.
    public func signal(_ signal: Int32) {
        reaped.withLock { if $0 == nil { _ = kill(pid, signal) } }
    }

    /// Waits for the child to exit and reaps it; the exit status, or 128+signal. The blocking
    /// wait happens on a thread of its own, never on the cooperative pool.
    public func wait() async -> Int32 {
        await runOnThread(name: "crisp-wait") { self.waitBlocking() }
    }

    /// Blocks the calling thread until the child has exited, then reaps it.
    public func waitBlocking() -> Int32 {
        _ = awaitExit(pidfd: pidfd, timeoutMilliseconds: -1)
        return reap()
    }

    /// Reaps the child; blocks only if it has not exited yet.
    func reap() -> Int32 {
        reaped.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            ChildReaper.forget(pid)
            let code = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            status = code
            return code
        }
    }
}

/// Blocks until the process of `pidfd` has exited (with every thread of it), or for at most
/// `timeoutMilliseconds` (-1: no limit). True once it has.
func awaitExit(pidfd: Int32, timeoutMilliseconds: Int32) -> Bool {
    var p = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
    var rc: Int32
    repeat { rc = poll(&p, 1, timeoutMilliseconds) } while rc < 0 && errno == EINTR
    return rc > 0
}
