public import CrispCore
public import Foundation
import CrispOS


/// Reads cgroup counters for a cgroup path (as given to the runtime in `cgroupsPath`).
/// `root` is injectable so both layouts are unit-tested on fixture trees.
public struct CgroupReader: Sendable {
    public enum Layout: Sendable, Equatable {
        /// One hierarchy per controller: `root/cpuacct/PATH`, `root/memory/PATH`, `root/pids/PATH`.
        case v1
        /// The unified hierarchy: `root/PATH`.
        case v2
    }

    public let root: String
    public let layout: Layout
    /// v1 controller → hierarchy mount point, when known; `root/CONTROLLER` otherwise.
    let v1MountPoints: [String: String]

    public init(root: String = "/sys/fs/cgroup", layout: Layout) {
        self.init(root: root, layout: layout, v1MountPoints: [:])
    }

    init(root: String, layout: Layout, v1MountPoints: [String: String]) {
        self.root = root
        self.layout = layout
        self.v1MountPoints = v1MountPoints
    }

    /// Reads where this host's hierarchies are (`CgroupHost.detect()`): the unified one in
    /// unified mode, the v1 ones otherwise (a hybrid host keeps its counters there too).
    public init(host: CgroupHost) {
        if host.mode == .unified {
            self.init(root: host.unifiedMountPoint ?? CgroupHost.unifiedRoot, layout: .v2)
        } else {
            self.init(root: CgroupHost.unifiedRoot, layout: .v1, v1MountPoints: host.v1MountPoints)
        }
    }

    func v1(_ controller: String) -> String { v1MountPoints[controller] ?? root + "/" + controller }

    /// nil when the cgroup does not exist (the container is gone or never started).
    public func sample(path: String, at: Date = Date()) -> CgroupSample? {
        let p = path.hasPrefix("/") ? path : "/" + path
        switch layout {
        case .v1:
            guard let cpu = Self.number(read(v1("cpuacct") + p + "/cpuacct.usage")) else { return nil }
            let usage = Self.number(read(v1("memory") + p + "/memory.usage_in_bytes")) ?? 0
            let stat = Self.keyValues(read(v1("memory") + p + "/memory.stat") ?? "")
            let inactive = stat["total_inactive_file"] ?? stat["inactive_file"] ?? 0
            let tasks = Self.number(read(v1("pids") + p + "/pids.current")) ?? 0
            var s = CgroupSample(
                cpuUsageNanos: cpu, memoryUsageBytes: usage,
                memoryWorkingSetBytes: usage > inactive ? usage - inactive : 0,
                memoryRSSBytes: stat["total_rss"] ?? stat["rss"] ?? 0,
                pageFaults: stat["total_pgfault"] ?? stat["pgfault"] ?? 0,
                majorPageFaults: stat["total_pgmajfault"] ?? stat["pgmajfault"] ?? 0,
                processes: tasks, at: at)
            s.cpuUserNanos = Self.number(read(v1("cpuacct") + p + "/cpuacct.usage_user")) ?? 0
            s.cpuSystemNanos = Self.number(read(v1("cpuacct") + p + "/cpuacct.usage_sys")) ?? 0
            s.memoryCacheBytes = stat["total_cache"] ?? stat["cache"] ?? 0
            s.memoryFailcnt = Self.number(read(v1("memory") + p + "/memory.failcnt")) ?? 0
            s.oomKills = Self.keyValues(read(v1("memory") + p + "/memory.oom_control") ?? "")["oom_kill"] ?? 0
            s.threads = tasks
            s.leafProcesses = Self.lineCount(read(v1("pids") + p + "/cgroup.procs"))
            return s
        case .v2:
            let dir = root + p
            guard let cpuStat = read(dir + "/cpu.stat") else { return nil }
            let cpu = Self.keyValues(cpuStat)["usage_usec"].map { $0 * 1000 } ?? 0
            let usage = Self.number(read(dir + "/memory.current")) ?? 0
            let stat = Self.keyValues(read(dir + "/memory.stat") ?? "")
            let inactive = stat["inactive_file"] ?? 0
            let tasks = Self.number(read(dir + "/pids.current")) ?? 0
            let cpuKeys = Self.keyValues(cpuStat)
            let events = Self.keyValues(read(dir + "/memory.events") ?? "")
            var s = CgroupSample(
                cpuUsageNanos: cpu, memoryUsageBytes: usage,
                memoryWorkingSetBytes: usage > inactive ? usage - inactive : 0,
                memoryRSSBytes: stat["anon"] ?? 0, pageFaults: stat["pgfault"] ?? 0,
                majorPageFaults: stat["pgmajfault"] ?? 0,
                processes: tasks, at: at)
            s.cpuUserNanos = (cpuKeys["user_usec"] ?? 0) * 1000
            s.cpuSystemNanos = (cpuKeys["system_usec"] ?? 0) * 1000
            s.memoryCacheBytes = stat["file"] ?? 0
            s.memoryFailcnt = events["max"] ?? 0
            s.oomKills = events["oom_kill"] ?? 0
            s.threads = tasks
            s.leafProcesses = Self.lineCount(read(dir + "/cgroup.procs"))
            return s
        }
    }

    /// CPU use between two samples in nanocores (1e9 = one full core).
    public static func nanoCores(from a: CgroupSample, to b: CgroupSample) -> UInt64 {
        let dt = b.at.timeIntervalSince(a.at)
        guard dt > 0, b.cpuUsageNanos >= a.cpuUsageNanos else { return 0 }
        return UInt64(Double(b.cpuUsageNanos - a.cpuUsageNanos) / dt)
    }

    /// Read to the end: Foundation's `String(contentsOfFile:)` stops after one read of a size-0
    /// pseudo-file, about 4 KiB, and memory.stat can be longer.
    func read(_ path: String) -> String? { readSmallFile(path) }

    static func number(_ text: String?) -> UInt64? {
        text.flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Non-empty lines (cgroup.procs lists one pid per line); nil when the file is missing.
    static func lineCount(_ text: String?) -> UInt64? {
        text.map { UInt64($0.split(separator: "\n").count) }
    }

    /// `name value` lines, as in memory.stat and cpu.stat.
    static func keyValues(_ text: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.count == 2, let v = UInt64(f[1]) { out[String(f[0])] = v }
        }
        return out
    }
}
