/// What a container asks for, as plain values shared by the service, the spec builder and the
/// CRI edge.

/// A bind mount a container asks for.
public struct ContainerMountRequest: Sendable, Equatable {
    public enum Propagation: String, Codable, Sendable { case `private`, hostToContainer, bidirectional }
    public var containerPath: String
    public var hostPath: String
    public var readonly = false
    public var propagation = Propagation.private
    /// Read-only all the way down, submounts included (the runtime's `rro` option).
    public var recursiveReadOnly = false
    /// An idmapped mount through the pod's user namespace (CRI `uidMappings`/`gidMappings`);
    /// the service stages it and hands the runtime the staged path.
    public var uidMappings: [IDMap] = []
    public var gidMappings: [IDMap] = []
    /// Relabel the host path with the container's mount label (SELinux hosts only).
    public var selinuxRelabel = false
    public init(containerPath: String, hostPath: String, readonly: Bool = false, propagation: Propagation = .private,
                recursiveReadOnly: Bool = false) {
        self.recursiveReadOnly = recursiveReadOnly
        self.containerPath = containerPath
        self.hostPath = hostPath
        self.readonly = readonly
        self.propagation = propagation
    }
}

/// A host device node given to a container, its numbers resolved.
public struct ContainerDeviceRequest: Sendable, Equatable {
    public var containerPath: String
    /// "c" or "b"
    public var type: String
    public var major: Int64
    public var minor: Int64
    public var fileMode: UInt32
    /// cgroup permissions such as "rwm"
    public var permissions: String
    public init(containerPath: String, type: String, major: Int64, minor: Int64, fileMode: UInt32, permissions: String) {
        self.containerPath = containerPath
        self.type = type
        self.major = major
        self.minor = minor
        self.fileMode = fileMode
        self.permissions = permissions
    }
}

/// A container's CPU, memory and huge page limits as the CRI asks for them.
public struct ContainerResourceRequest: Sendable {
    public var cpuShares: UInt64 = 0
    public var cpuQuota: Int64 = 0
    public var cpuPeriod: UInt64 = 0
    public var cpusetCPUs = ""
    public var cpusetMems = ""
    public var memoryLimit: Int64 = 0
    public var memorySwapLimit: Int64 = 0
    public var oomScoreAdj: Int = 0
    public var hugepageLimits: [(pageSize: String, limit: UInt64)] = []
    public var unified: [String: String] = [:]
    public init() {}
}

/// The security settings a container asks for in its CRI `securityContext`, before crisp
/// decides its seccomp, AppArmor and SELinux profiles.
public struct ContainerSecurityContext: Sendable, Equatable {
    public var privileged = false
    public var readonlyRootfs = false
    public var noNewPrivileges = false
    public var addCapabilities: [String] = []
    public var dropCapabilities: [String] = []
    /// KEP-2763: added to every set including ambient and inheritable, so a non-root process
    /// keeps them across execve.
    public var addAmbientCapabilities: [String] = []
    public var runAsUser: Int64?
    public var runAsUsername = ""
    public var runAsGroup: Int64?
    public var supplementalGroups: [Int64] = []
    /// Strict: only the primary group and `supplementalGroups`; the default (Merge) adds the
    /// groups the image's /etc/group lists the user in.
    public var strictSupplementalGroups = false
    /// Non-empty lists replace the defaults, as the CRI allows.
    public var maskedPaths: [String] = []
    public var readonlyPaths: [String] = []
    public init() {}
}
