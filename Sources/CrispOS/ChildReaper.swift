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
public enum ChildReaper {
    static let own = Mutex<Set<Int32>>([])

    /// Runs `spawn` (which returns the new pid, or a value ≤ 0 on failure) with the registry
    /// locked, and records the pid.
    static func spawning(_ spawn: () -> Int32) -> Int32 {
        own.withLock { set in
            let pid = spawn()
            if pid > 0 { set.insert(pid) }
            return pid
        }
    }

    static func forget(_ pid: Int32) { _ = own.withLock { $0.remove(pid) } }

    /// Makes this process a subreaper and starts the reaping thread.
    /// - Returns: a message saying why not, or nil once running.
    public static func start() -> String? {
        let notifier = crisp_sigchld_notifier()
        guard notifier >= 0 else { return "SIGCHLD notifier: \(String(cString: strerror(errno)))" }
        guard crisp_set_child_subreaper() == 0 else { return "PR_SET_CHILD_SUBREAPER: \(String(cString: strerror(errno)))" }
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
        own.withLock { set in
            var reaped: [Int32] = []
            for pid in zombieChildren() where !set.contains(pid) {
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
                // The state follows the command name, which may hold spaces or parentheses.
                guard let stat = readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
                if stat[close...].dropFirst(2).first == "Z" { out.append(pid) }
            }
        }
        return out
    }
}
