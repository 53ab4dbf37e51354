/// `cgroup_manager`: who names and creates the containers' cgroups.
public enum CgroupManager: String, Sendable, Equatable, CaseIterable {
    /// Paths under the hierarchy, written by the runtime (`/PARENT/crisp-ID`).
    case cgroupfs
    /// Transient scopes through systemd (`SLICE:crisp:ID`).
    case systemd
}
