/// The cgroup mounts of /proc/self/mountinfo: where each v1 controller's hierarchy is and where
/// the cgroup2 hierarchy is. Pure: built from the file's text.
public struct CgroupMounts: Sendable, Equatable {
    /// v1 controller → mount point. A co-mounted hierarchy (`cpu,cpuacct`) is listed under each.
    public var v1: [String: String] = [:]
    /// The cgroup2 mount point, if any.
    public var unified: String?

    /// The controllers a v1 mount can carry in its super options; the rest of those options
    /// (`rw`, `name=systemd`, `clone_children`, `release_agent=…`) name none.
    static let v1Controllers: Set<String> = [
        "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "misc", "net_cls",
        "net_prio", "perf_event", "pids", "rdma",
    ]

    public init(v1: [String: String] = [:], unified: String? = nil) {
        self.v1 = v1
        self.unified = unified
    }

    /// Lines are `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS`.
    /// A hierarchy mounted twice (a bind mount, a container's view) keeps the mount under
    /// /sys/fs/cgroup, where runc looks, else the first one listed.
    public init(mountinfo: String) {
        func preferred(_ new: String, over old: String?) -> Bool {
            guard let old else { return true }
            return !Self.underCgroupRoot(old) && Self.underCgroupRoot(new)
        }
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 4 else { continue }
            let mountPoint = Self.unescape(fields[4])
            switch fields[dash + 1] {
            case "cgroup":
                for option in fields[dash + 3].split(separator: ",") where Self.v1Controllers.contains(String(option)) {
                    if preferred(mountPoint, over: v1[String(option)]) { v1[String(option)] = mountPoint }
                }
            case "cgroup2":
                // /sys/fs/cgroup itself (unified mode) wins over /sys/fs/cgroup/unified (hybrid).
                if unified == nil || mountPoint == CgroupHost.unifiedRoot
                    || (unified != CgroupHost.unifiedRoot && preferred(mountPoint, over: unified)) {
                    unified = mountPoint
                }
            default:
                continue
            }
        }
    }

    static func underCgroupRoot(_ path: String) -> Bool {
        path == CgroupHost.unifiedRoot || path.hasPrefix(CgroupHost.unifiedRoot + "/")
    }

    /// mountinfo writes space, tab, newline and backslash in paths as octal escapes (`\040`).
    static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var out: [UInt8] = []
        let bytes = Array(field.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 4 <= bytes.count,
               let v = UInt8(String(decoding: bytes[(i + 1)..<(i + 4)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
