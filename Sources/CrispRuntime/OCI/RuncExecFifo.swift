import CrispCore
import CrispOS
import Foundation
import Glibc

/// StartContainer without a `runc start`. A created runc container's init waits, inside the
/// container, to open `ROOT/ID/exec.fifo` for writing; it writes one byte and execs the
/// command once a reader opens it. `runc start` is nothing more than that reader (it runs no
/// hooks in runc 1.1; poststart hooks run at create), yet as a process of its own it costs
/// 10–15 ms of a Go start-up on every container and pod. crisp reads the fifo itself, as runc
/// would: the byte and then EOF (the command has exec'd, closing the fifo), and removes it,
/// which is how runc tells `created` from `running`.
///
/// Only for runc's state layout: a container whose state file or fifo is not there (crun), or
/// whose config has poststart hooks (a later runc that runs them at start), is started with the
/// runtime's own `start`.
enum RuncExecFifo {
    enum Outcome: Equatable {
        case started
        /// Not a case for the fast path; the runtime's `start` must do it.
        case useRuntime
    }

    static func start(root: String, id: String, timeout: Duration = .seconds(60)) async throws(CrispError) -> Outcome {
        guard let state = RuncStateFile.read(root: root, id: id) else { return .useRuntime }
        if state.config?.hasHooks("poststart") == true { return .useRuntime }
        let fifo = root + "/" + id + "/exec.fifo"
        var st = stat()
        guard lstat(fifo, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO else { return .useRuntime }
        guard let pidfd = ProcessIdentity.pidfd(pid: state.initProcessPID, startedAt: state.initProcessStart) else {
            throw CrispError(.failedPrecondition, "container \(id) cannot be started: its process (pid \(state.initProcessPID)) has already exited")
        }
        let milliseconds = Int32(clamping: Int64(timeout / .milliseconds(1)))
        let result = await runOnThread(name: "crisp-start") { () -> Result<Void, CrispError> in
            defer { close(pidfd) }
            return Result { () throws(CrispError) in try readHandshake(fifo: fifo, pidfd: pidfd, id: id, timeoutMilliseconds: milliseconds) }
        }
        try result.get()
        return .started
    }

    /// Opens the fifo without blocking (the init may have died, leaving no writer to wait for),
    /// then waits for the byte and the end of the file, or for the init's exit.
    static func readHandshake(fifo: String, pidfd: Int32, id: String, timeoutMilliseconds: Int32) throws(CrispError) {
        let fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw CrispError(.internal, "starting container \(id) failed", cause: SystemCallError("open", fifo, errno: errno))
        }
        defer { close(fd) }
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutMilliseconds))
        var received = 0
        var initGone = false
        // The writer came and went: a read that then finds nothing is runc's "already running".
        var hungUp = false
        var buffer = [UInt8](repeating: 0, count: 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { received += n; continue }
            if n == 0 && received > 0 { break }  // the byte, then EOF: the command has exec'd
            if n < 0 && errno != EAGAIN && errno != EINTR {
                throw CrispError(.internal, "starting container \(id) failed", cause: SystemCallError("read", fifo, errno: errno))
            }
            // Nothing yet (n == 0 with no writer so far also reads as EOF). An init that exited
            // after its byte and exec was read above: the command may have ended at once.
            if initGone {
                throw CrispError(.failedPrecondition, "container \(id) cannot be started: its process has already exited")
            }
            if hungUp { throw CrispError(.failedPrecondition, "container \(id) cannot be started: it is already running") }
            let left = deadline - ContinuousClock.now
            guard left > .zero else {
                throw CrispError(.deadlineExceeded, "container \(id) did not start within \(timeoutMilliseconds) ms: its process never took the start signal")
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, Int32(clamping: Int64(left / .milliseconds(1)) + 1)) < 0 && errno != EINTR {
                throw CrispError(.internal, "starting container \(id) failed", cause: SystemCallError("poll", fifo, errno: errno))
            }
            initGone = fds[1].revents != 0
            hungUp = fds[0].revents & Int16(POLLHUP) != 0
        }
        if unlink(fifo) != 0 && errno != ENOENT {
            throw CrispError(.internal, "container \(id) started, but its start fifo could not be removed",
                             cause: SystemCallError("unlink", fifo, errno: errno))
        }
    }
}
