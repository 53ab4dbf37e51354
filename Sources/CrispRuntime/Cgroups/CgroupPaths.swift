public import CrispCore
public import Foundation

/// Where a container's cgroup lives in the cgroup filesystem, for either cgroup manager. The
/// runtime is given `cgroupsPath` (see `SpecBuilder.cgroupsPath`); stats need the directory.
public enum CgroupPaths {
    /// The directory (relative to a hierarchy root) of the cgroup the runtime makes for `id`.
    public static func directory(manager: CgroupManager, parent: String, id: String) -> String {
        if manager == .systemd {
            // runc's systemd driver puts "slice:prefix:name" in the scope "prefix-name.scope"
            // under the slice's own nested directory.
            let slice = parent.isEmpty ? "system.slice" : parent
            return "/" + sliceDirectory(slice) + "/crisp-" + id + ".scope"
        }
        return SpecBuilder.cgroupsPath(manager: manager, parent: parent, id: id)
    }

    /// The directory of a cgroup parent as the kubelet names it: a path for cgroupfs, a slice
    /// name for systemd.
    public static func parentDirectory(manager: CgroupManager, parent: String) -> String? {
        guard !parent.isEmpty else { return nil }
        if manager == .systemd && parent.hasSuffix(".slice") { return "/" + sliceDirectory(parent) }
        return parent.hasPrefix("/") ? parent : "/" + parent
    }

    /// systemd nests slices by their dash-separated prefixes: `a-b-c.slice` lives at
    /// `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
    public static func sliceDirectory(_ slice: String) -> String {
        guard slice.hasSuffix(".slice"), slice != "-.slice" else { return slice == "-.slice" ? "" : slice }
        let name = slice.dropLast(6)
        var parts: [String] = []
        var prefix = ""
        for component in name.split(separator: "-", omittingEmptySubsequences: false) {
            prefix = prefix.isEmpty ? String(component) : prefix + "-" + component
            parts.append(prefix + ".slice")
        }
        return parts.joined(separator: "/")
    }
}

extension CgroupSample {
    /// Counters of several cgroups added up (a pod without a cgroup of its own), stamped `at`.
    public static func sum(_ samples: [CgroupSample], at: Foundation.Date) -> CgroupSample? {
        guard !samples.isEmpty else { return nil }
        var total = CgroupSample(cpuUsageNanos: 0, memoryUsageBytes: 0, memoryWorkingSetBytes: 0, memoryRSSBytes: 0,
                                 pageFaults: 0, majorPageFaults: 0, processes: 0, at: at)
        for s in samples {
            total.cpuUsageNanos += s.cpuUsageNanos
            total.memoryUsageBytes += s.memoryUsageBytes
            total.memoryWorkingSetBytes += s.memoryWorkingSetBytes
            total.memoryRSSBytes += s.memoryRSSBytes
            total.pageFaults += s.pageFaults
            total.majorPageFaults += s.majorPageFaults
            total.processes += s.processes
            total.cpuUserNanos += s.cpuUserNanos
            total.cpuSystemNanos += s.cpuSystemNanos
            total.memoryCacheBytes += s.memoryCacheBytes
            total.memoryFailcnt += s.memoryFailcnt
            total.oomKills += s.oomKills
            total.threads += s.threads
        }
        return total
    }
}
