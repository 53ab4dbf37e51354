public import CrispOCI

/// What the cgroup hierarchy the OCI runtime sets limits in can limit. Part of the spec
/// builder's input, so leaving limits out is decided without touching the disk.
public struct CgroupControllers: Sendable, Equatable {
    public enum Version: Sendable, Equatable { case v1, v2 }

    /// Which cgroup version runc writes the limits to (v1 on a hybrid host).
    public var version: Version
    /// Controller names as the kernel calls them in that version (`blkio` in v1, `io` in v2).
    public var names: Set<String>
    /// Swap can be limited: v1 `memory.memsw.*`, v2 `memory.swap.max`.
    public var swap: Bool
    /// Page sizes the kernel has (`2MB`, `1GB`); nil keeps every requested one.
    public var hugePageSizes: Set<String>?

    public init(version: Version, names: Set<String>, swap: Bool, hugePageSizes: Set<String>? = nil) {
        self.version = version
        self.names = names
        self.swap = swap
        self.hugePageSizes = hugePageSizes
    }

    /// A limit left out of a spec and the controller it needed.
    public struct Omission: Sendable, Equatable, CustomStringConvertible {
        /// `hugetlb`, `pids`, `blkio`/`io`, `rdma`, `cpuset`, `memory.swap`, `unified`.
        public var controller: String
        /// What was left out, for the log.
        public var what: String
        public init(controller: String, what: String) {
            self.controller = controller
            self.what = what
        }
        public var description: String { "\(what) (\(controller))" }
    }

    func has(_ name: String) -> Bool { names.contains(name) }

    /// Removes from `resources` every limit this hierarchy cannot take, and says which. runc
    /// fails the whole container on any of them ("cannot set hugetlb limit"); CRI-O and
    /// containerd leave them out the same way.
    public func restrict(_ r: inout RuntimeSpec.Resources) -> [Omission] {
        var out: [Omission] = []
        if let limits = r.hugepageLimits, !limits.isEmpty {
            if !has("hugetlb") {
                r.hugepageLimits = nil
                out.append(.init(controller: "hugetlb", what: "hugepage limits " + limits.map(\.pageSize).joined(separator: ",")))
            } else if let sizes = hugePageSizes {
                // A page size the kernel lacks has no hugetlb.SIZE.* file to write.
                let missing = limits.filter { !sizes.contains($0.pageSize) }
                if !missing.isEmpty {
                    r.hugepageLimits = limits.filter { sizes.contains($0.pageSize) }
                    if r.hugepageLimits?.isEmpty == true { r.hugepageLimits = nil }
                    out.append(.init(controller: "hugetlb", what: "hugepage limits for page sizes this kernel lacks "
                                         + missing.map(\.pageSize).joined(separator: ",")))
                }
            }
        }
        if r.pids != nil, !has("pids") {
            r.pids = nil
            out.append(.init(controller: "pids", what: "pids limit"))
        }
        let io = version == .v1 ? "blkio" : "io"
        if r.blockIO != nil, !has(io) {
            r.blockIO = nil
            out.append(.init(controller: io, what: "block IO weights"))
        }
        if r.rdma != nil, !has("rdma") {
            r.rdma = nil
            out.append(.init(controller: "rdma", what: "rdma limits"))
        }
        if var cpu = r.cpu, cpu.cpus != nil || cpu.mems != nil, !has("cpuset") {
            cpu.cpus = nil
            cpu.mems = nil
            r.cpu = cpu == RuntimeSpec.CPU() ? nil : cpu
            out.append(.init(controller: "cpuset", what: "cpuset cpus/mems"))
        }
        if r.memory?.swap != nil, !swap {
            r.memory?.swap = nil
            out.append(.init(controller: "memory.swap", what: "memory+swap limit (swap accounting is off)"))
        }
        // runc refuses `unified` outright on a v1 (or hybrid) host; the kubelet only sends it on v2.
        if let unified = r.unified, !unified.isEmpty, version == .v1 {
            r.unified = nil
            out.append(.init(controller: "unified", what: "unified cgroup v2 settings " + unified.keys.sorted().joined(separator: ",")))
        }
        return out
    }
}
