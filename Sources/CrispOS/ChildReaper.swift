public import CrispCore
import CCrispShim
import Glibc
import Synchronization

/// crispd as a child subreaper (PR_SET_CHILD_SUBREAPER): processes orphaned below it (conmon
/// after it daemonizes, a container process whose conmon died) become its children instead of
/// init's. systemd's PID 1 reaps orphans at once, but other inits may not, and crispd then sees
/// what it started. Such orphans must be reaped here, or they stay zombies; children crispd
/// started itself must not be, or their owner's wait would lose the exit status. `Spawn`
/// records every child it starts (under the same lock, so a child is known before it can exit)
/// and forgets it once reaped; the reaper takes only zombies it does not know. It wakes on
/// SIGCHLD through a self-pipe, never on a timer.
///
/// A process that a child of crispd's leaves behind on purpose (the command of `runc exec
/// --detach`) is an orphan too, but its owner wants its exit status: an `OrphanHold` keeps the
/// reaper off every orphan from before that child starts until the owner has adopted the
/// process, so the status cannot be taken in between.
public enum ChildReaper {
    struct State {
        var own: Set<Int32> = []
        var holds = 0
        var running = false
    }
    static let state = Mutex(State())

    /// Runs `spawn` (which returns the new pid, or a value ≤ 0 on failure) with the registry
    /// locked, and records the pid.
    static func spawning(_ spawn: () -> Int32) -> Int32 {
        state.withLock { s in
            let pid = spawn()
            if pid > 0 { s.own.insert(pid) }
            return pid
        }
    }

    static func forget(_ pid: Int32) { _ = state.withLock { $0.own.remove(pid) } }

    /// Keeps the reaper off orphans until the hold is released (nil when this process is not a
    /// subreaper, and an orphan would go to init instead).
    public static func holdOrphans() -> OrphanHold? {
        state.withLock { s in
            guard s.running else { return nil }
            s.holds += 1
            return OrphanHold()
        }
    }

    static func release() {
        let last = state.withLock { s in
            s.holds -= 1
            return s.holds == 0
        }
        // Orphans that exited during the hold sent their SIGCHLD while the reaper stood back.
        if last { reapOrphans() }
    }

    /// Makes this process a subreaper and starts the reaping thread.
    /// - Returns: a message saying why not, or nil once running.
    public static func start() -> String? {
        let notifier = crisp_sigchld_notifier()
        guard notifier >= 0 else { return "SIGCHLD notifier: \(String(cString: strerror(errno)))" }
        guard crisp_set_child_subreaper() == 0 else { return "PR_SET_CHILD_SUBREAPER: \(String(cString: strerror(errno)))" }
        state.withLock { $0.running = true }
        startThread(name: "crisp-reaper") {
            var drain = [UInt8](repeating: 0, count: 64)
            while true {
                var p = pollfd(fd: notifier, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, -1) < 0 && errno != EINTR { return }
                while read(notifier, &drain, drain.count) > 0 {}
                _ = reapOrphans()
            }
        }
        // Orphans adopted before the handler was in place sent their SIGCHLD to nobody.
        _ = reapOrphans()
        return nil
    }

    /// Reaps every zombie child this process did not start through `Spawn`; returns their pids.
    @discardableResult
    static func reapOrphans() -> [Int32] {
        state.withLock { s in
            var reaped: [Int32] = []
            guard s.holds == 0 else { return reaped }
            for pid in zombieChildren() where !s.own.contains(pid) {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { reaped.append(pid) }
            }
            return reaped
        }
    }

    /// Children of every thread (`/proc/self/task/TID/children`) that have exited.
    static func zombieChildren() -> [Int32] {
        guard let tasks = try? DirectoryWalk.entries(atPath: "/proc/self/task") else { return [] }
        var out: [Int32] = []
        for task in tasks {
            let list = readSmallFile("/proc/self/task/\(task.name.description)/children") ?? ""
            for field in list.split(whereSeparator: \.isWhitespace) {
                guard let pid = Int32(field) else { continue }
                if ProcStat.fields(pid: pid)?.first == "Z" { out.append(pid) }
            }
        }
        return out
    }
}

/// The reaper standing back from orphans (see `ChildReaper`). Released once, explicitly or when
/// dropped, so a forgotten hold cannot stop orphan reaping for good.
public final class OrphanHold: Sendable {
    private let released = Atomic<Bool>(false)

    init() {}

    deinit { release() }

    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { ChildReaper.release() }
    }

    /// Makes `pid`, an orphan this process has inherited as subreaper, a child it waits for
    /// like one it spawned. Fails when `pid` is not (or no longer) a child of this process.
    public func adopt(_ pid: Int32) throws(CrispError) -> SpawnedChild {
        let parent = ProcStat.fields(pid: pid).flatMap { $0.count > 1 ? Int32($0[1]) : nil }
        guard parent == getpid() else {
            throw CrispError(.internal, "process \(pid) is not a child of crispd (parent \(parent.map(String.init) ?? "unknown")); cannot wait for it")
        }
        ChildReaper.state.withLock { _ = $0.own.insert(pid) }
        let pidfd = crisp_pidfd_open(pid)
        guard pidfd >= 0 else {
            let e = errno
            ChildReaper.forget(pid)
            throw CrispError(.internal, "cannot watch adopted process \(pid)", cause: SystemCallError("pidfd_open", String(pid), errno: e))
        }
        return SpawnedChild(pid: pid, pidfd: pidfd)
    }
}
