public import Foundation

/// One sample of a container's cgroup counters, read from cgroup v1 or v2 files.
public struct CgroupSample: Sendable, Equatable {
    /// Cumulative CPU time in nanoseconds.
    public var cpuUsageNanos: UInt64
    public var memoryUsageBytes: UInt64
    /// usage − inactive file cache, as the kubelet counts it.
    public var memoryWorkingSetBytes: UInt64
    public var memoryRSSBytes: UInt64
    public var pageFaults: UInt64
    public var majorPageFaults: UInt64
    /// Tasks in the cgroup and its descendants (pids.current), the stats RPCs' process count.
    public var processes: UInt64
    public var at: Date
    public var cpuUserNanos: UInt64 = 0
    public var cpuSystemNanos: UInt64 = 0
    /// Page cache charged to the cgroup.
    public var memoryCacheBytes: UInt64 = 0
    /// How often the memory limit was hit (v1 memory.failcnt; v2 memory.events `max`).
    public var memoryFailcnt: UInt64 = 0
    /// Processes the OOM killer killed in the cgroup (memory.oom_control / memory.events `oom_kill`).
    public var oomKills: UInt64 = 0
    public var threads: UInt64 = 0
    /// Processes (thread-group leaders) directly in this cgroup (cgroup.procs): a container's
    /// cgroup is a leaf, so this is its process count; nil where the file is missing.
    public var leafProcesses: UInt64?

    public init(cpuUsageNanos: UInt64, memoryUsageBytes: UInt64, memoryWorkingSetBytes: UInt64, memoryRSSBytes: UInt64,
                pageFaults: UInt64, majorPageFaults: UInt64, processes: UInt64, at: Date, cpuUserNanos: UInt64 = 0,
                cpuSystemNanos: UInt64 = 0, memoryCacheBytes: UInt64 = 0, memoryFailcnt: UInt64 = 0, oomKills: UInt64 = 0,
                threads: UInt64 = 0, leafProcesses: UInt64? = nil) {
        self.cpuUsageNanos = cpuUsageNanos
        self.memoryUsageBytes = memoryUsageBytes
        self.memoryWorkingSetBytes = memoryWorkingSetBytes
        self.memoryRSSBytes = memoryRSSBytes
        self.pageFaults = pageFaults
        self.majorPageFaults = majorPageFaults
        self.processes = processes
        self.at = at
        self.cpuUserNanos = cpuUserNanos
        self.cpuSystemNanos = cpuSystemNanos
        self.memoryCacheBytes = memoryCacheBytes
        self.memoryFailcnt = memoryFailcnt
        self.oomKills = oomKills
        self.threads = threads
        self.leafProcesses = leafProcesses
    }
}
