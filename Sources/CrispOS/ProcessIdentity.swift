import CCrispShim
public import CrispCore
import Glibc

/// A process that is not crisp's child, named by a PID and the start time someone recorded when
/// it began (runc keeps its container's init start time). The PID alone could name another
/// process by now; the start time tells, and the pidfd keeps the answer true until the signal.
public enum ProcessIdentity {
    public enum Delivery: Sendable, Equatable {
        case sent
        /// The process has exited (a zombie not yet reaped counts as sent: the signal is moot).
        case gone
    }

    /// Sends `signal` to `pid` if it is still the process that started at `startTime` (clock
    /// ticks after boot, field 22 of /proc/PID/stat).
    public static func signal(pid: Int32, startedAt startTime: UInt64, _ signal: Int32) throws(SystemCallError) -> Delivery {
        guard let fd = try openVerified(pid: pid, startedAt: startTime) else { return .gone }
        defer { close(fd) }
        if crisp_pidfd_send_signal(fd, signal) != 0 {
            if errno == ESRCH { return .gone }
            throw SystemCallError("pidfd_send_signal", "\(pid)", errno: errno)
        }
        return .sent
    }

    /// A pidfd of `pid` while it is still the process that started at `startTime`; nil once it
    /// has gone (or the PID names another process). The caller closes it.
    public static func pidfd(pid: Int32, startedAt startTime: UInt64) -> Int32? {
        (try? openVerified(pid: pid, startedAt: startTime)) ?? nil
    }

    /// A pidfd of `pid` if it is still the process that started at `startTime`, nil if it has
    /// gone. Read with the pidfd open: if /proc/PID is still the process that started then, the
    /// pidfd is that process, and a later exit only makes a send fail with ESRCH.
    static func openVerified(pid: Int32, startedAt startTime: UInt64) throws(SystemCallError) -> Int32? {
        guard pid > 0 else { return nil }
        let fd = crisp_pidfd_open(pid)
        if fd < 0 {
            if errno == ESRCH { return nil }
            throw SystemCallError("pidfd_open", "\(pid)", errno: errno)
        }
        guard let stat = readSmallFile("/proc/\(pid)/stat"), Self.startTime(stat: stat) == startTime else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Field 22 of a /proc/PID/stat line. The command (field 2) may hold spaces and
    /// parentheses, so the fields are counted from after its last ')'.
    public static func startTime(stat: String) -> UInt64? {
        guard let fields = ProcStat.fieldsAfterCommand(stat), fields.count >= 20 else { return nil }
        return UInt64(fields[19])
    }
}

extension ProcessIdentity {
    /// SIGKILLs `pid` and blocks until its whole thread group has exited (its pidfd turns
    /// readable), for at most `timeoutMilliseconds`. `stillMeant` is asked with the pidfd open,
    /// so a PID reused since the caller read it is left alone. True once the process is gone.
    public static func killAndWait(pid: Int32, timeoutMilliseconds: Int32, stillMeant: (Int32) -> Bool) -> Bool {
        guard pid > 0 else { return true }
        let fd = crisp_pidfd_open(pid)
        if fd < 0 { return errno == ESRCH }
        defer { close(fd) }
        guard stillMeant(pid) else { return true }
        if crisp_pidfd_send_signal(fd, SIGKILL) != 0 && errno != ESRCH { return false }
        return awaitExit(pidfd: fd, timeoutMilliseconds: timeoutMilliseconds)
    }
}
