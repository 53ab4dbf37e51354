import CrispCore
import CrispOS
import Glibc

/// What runc leaves of a container's cgroups. `runc delete` kills a created container, sees its
/// init as stopped once the thread-group leader is a zombie, and then gives up on rmdir after a
/// few hundred milliseconds; runc 1.1 drops that error. On a loaded node the init's other
/// threads can still be exiting then, and the directory stays for ever (the racing-image stress
/// scenario left one). crisp removes such directories itself once every process in them has
/// exited, waiting on pidfds rather than a timer.
public enum CgroupLeftovers {
    /// Removes every directory of `paths` that still exists, nested cgroups first, killing the
    /// processes still in it and waiting at most `patience` for them. Returns the directories
    /// that stay, each with why. Costs one stat per path when runc removed everything.
    public static func remove(_ paths: some Sequence<String>, patience: Duration = .seconds(10)) async -> [String: String] {
        let existing = Set(paths.filter { !$0.isEmpty && isDirectory($0) }).sorted { $0.count > $1.count }
        guard !existing.isEmpty else { return [:] }
        return await runOnThread(name: "crisp-cgroup-rm") { () -> [String: String] in
            let deadline = ContinuousClock.now + patience
            var stays: [String: String] = [:]
            for dir in existing {
                if let why = removeTree(dir, deadline: deadline) { stays[dir] = why }
            }
            return stays
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        (try? FileStatus(of: path).kind) == .directory
    }

    /// rmdir of `dir` and the cgroups under it, deepest first; nil when it is gone.
    static func removeTree(_ dir: String, deadline: ContinuousClock.Instant) -> String? {
        // Nested cgroups are the only directories in one; cgroupfs fills in d_type.
        for entry in (try? DirectoryWalk.entries(atPath: dir)) ?? [] where entry.type == UInt8(DT_DIR) {
            if let why = removeTree(dir + "/" + entry.name.description, deadline: deadline) { return why }
        }
        while true {
            if rmdir(dir) == 0 || errno == ENOENT { return nil }
            let failure = errno
            guard failure == EBUSY else { return "rmdir: \(String(cString: strerror(failure)))" }
            let pids = processes(in: dir)
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return "still busy, processes \(pids)" }
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)
            if pids.isEmpty {
                // Busy with no process listed: the last thread is between leaving the task list
                // and the cgroup's release, a matter of microseconds.
                usleep(1000)
                continue
            }
            for pid in pids {
                _ = ProcessIdentity.killAndWait(pid: pid, timeoutMilliseconds: max(1, milliseconds)) { pid in
                    isMember(pid: pid, of: dir)
                }
            }
        }
    }

    /// The processes in the cgroup directory `dir` itself; none when it is gone.
    static func processes(in dir: String) -> [Int32] {
        guard !dir.isEmpty else { return [] }
        return (readSmallFile(dir + "/cgroup.procs") ?? "").split(whereSeparator: \.isNewline).compactMap { Int32($0) }
    }

    /// Whether /proc/PID/cgroup puts `pid` in `dir`: some hierarchy's path of it (after the
    /// second colon, relative to the hierarchy's mount) ends `dir`.
    static func isMember(pid: Int32, of dir: String) -> Bool {
        guard let text = readSmallFile("/proc/\(pid)/cgroup") else { return false }
        return isMember(cgroupFile: text, of: dir)
    }

    static func isMember(cgroupFile text: String, of dir: String) -> Bool {
        text.split(separator: "\n").contains { line in
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[2] != "/" else { return false }
            return dir.hasSuffix(String(fields[2]))
        }
    }
}
