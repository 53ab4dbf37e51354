import CrispOS
import Foundation

/// This host's cgroup hierarchies, as the OCI runtime will use them: probed once at start-up
/// from /proc/self/mountinfo and the cgroup files, never assumed. The kubelet asks for limits
/// (hugetlb on every container, for one) whatever the host has, and runc fails a container whose
/// limit has no controller to go to; CRI-O and containerd leave such limits out, and so does
/// `SpecBuilder`, from `controllers`.
public struct CgroupHost: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        /// cgroup v1 only: one hierarchy per controller (or group of controllers).
        case legacy
        /// v1 hierarchies plus a cgroup2 mount beside them (systemd's /sys/fs/cgroup/unified).
        /// runc sets every limit in the v1 hierarchies; the cgroup2 one only tracks processes.
        case hybrid
        /// cgroup v2 only: the unified hierarchy is mounted at /sys/fs/cgroup.
        case unified
    }

    public var mode: Mode
    /// What the hierarchy that takes the limits can limit.
    public var controllers: CgroupControllers
    /// Where each v1 controller's hierarchy is mounted (`memory` → /sys/fs/cgroup/memory).
    public var v1MountPoints: [String: String]
    /// Where the cgroup2 hierarchy is mounted, if it is.
    public var unifiedMountPoint: String?

    /// The mount point runc takes for the unified mode: it checks /sys/fs/cgroup itself.
    public static let unifiedRoot = "/sys/fs/cgroup"
    static let hugePagesDirectory = "/sys/kernel/mm/hugepages"

    /// Classifies the host from its cgroup mounts and the probed files. Pure.
    /// - Parameters:
    ///   - unifiedControllers: the text of the cgroup2 root's `cgroup.controllers`, if mounted.
    ///   - swapAccounting: whether swap can be limited (see `swapProbePath`).
    ///   - hugePageDirectories: the names under /sys/kernel/mm/hugepages (`hugepages-2048kB`);
    ///     nil when not probed, which keeps every page size.
    public init(mounts: CgroupMounts, unifiedControllers: String?, swapAccounting: Bool, hugePageDirectories: [String]?) {
        v1MountPoints = mounts.v1
        unifiedMountPoint = mounts.unified
        let names: Set<String>
        if mounts.unified == Self.unifiedRoot {
            mode = .unified
            names = Set((unifiedControllers ?? "").split(whereSeparator: \.isWhitespace).map(String.init))
        } else {
            // Whatever the cgroup2 mount beside them holds (hugetlb, on this project's host), runc
            // only sets limits in the v1 hierarchies.
            mode = mounts.unified == nil ? .legacy : .hybrid
            names = Set(mounts.v1.keys)
        }
        controllers = CgroupControllers(version: mode == .unified ? .v2 : .v1, names: names, swap: swapAccounting,
                                        hugePageSizes: hugePageDirectories.map { Set($0.compactMap(Self.pageSize(directory:))) })
    }

    /// The file whose presence says swap can be limited: `memory.memsw.limit_in_bytes` at the
    /// root of the v1 memory hierarchy (absent with `swapaccount=0`), or `memory.swap.max` in
    /// crispd's own cgroup v2 (`ownCgroup` is /proc/self/cgroup's text), as CRI-O probes it:
    /// the v2 root cgroup has no memory files of its own.
    public static func swapProbePath(mounts: CgroupMounts, ownCgroup: String?) -> String? {
        if mounts.unified == unifiedRoot {
            let line = (ownCgroup ?? "").split(separator: "\n").first { $0.hasPrefix("0::") }
            let path = line.map { String($0.dropFirst(3)) } ?? "/"
            return unifiedRoot + (path == "/" ? "" : path) + "/memory.swap.max"
        }
        return mounts.v1["memory"].map { $0 + "/memory.memsw.limit_in_bytes" }
    }

    /// This host's hierarchies, from /proc/self/mountinfo, the cgroup2 root's
    /// `cgroup.controllers`, the swap files and /sys/kernel/mm/hugepages. Reads /proc with
    /// `readSmallFile`: Foundation stops after 4 KiB of a proc file, and mountinfo is longer.
    public static func detect() -> CgroupHost {
        detect(read: { readSmallFile($0) }, list: { try? FileManager.default.contentsOfDirectory(atPath: $0) })
    }

    /// `detect()` over injected files: `read` returns a file's text or nil when it cannot be
    /// read, `list` a directory's entries, so a fake filesystem tests it.
    static func detect(read: (String) -> String?, list: (String) -> [String]?) -> CgroupHost {
        let mounts = CgroupMounts(mountinfo: read("/proc/self/mountinfo") ?? "")
        let controllers = mounts.unified.flatMap { read($0 + "/cgroup.controllers") }
        let swap = swapProbePath(mounts: mounts, ownCgroup: read("/proc/self/cgroup")).map { read($0) != nil } ?? false
        return CgroupHost(mounts: mounts, unifiedControllers: controllers, swapAccounting: swap,
                          hugePageDirectories: list(hugePagesDirectory) ?? [])
    }

    /// `hugepages-2048kB` → `2MB`, the name runc gives the page size in hugetlb file names and
    /// the kubelet sends (runc's `HugePageSizes`: binary units, printed with %g).
    static func pageSize(directory name: String) -> String? {
        guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"),
              let kb = UInt64(name.dropFirst("hugepages-".count).dropLast(2)) else { return nil }
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var size = Double(kb) * 1024
        var unit = 0
        while size >= 1024 && unit < units.count - 1 {
            size /= 1024
            unit += 1
        }
        return String(format: "%g", size) + units[unit]
    }
}
