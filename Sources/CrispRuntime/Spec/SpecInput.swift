public import CrispCore
public import CrispSecurity

/// Everything the spec builder needs, as plain values: no disk, no gRPC. The service gathers
/// these (image config, CRI request, sandbox paths, the image's /etc/passwd text) and the
/// builder turns them into an OCI runtime spec.
public struct ContainerSpecInput: Sendable {
    public var id: String
    public var rootfs: String
    public var image = ImageDefaults()
    public var process = ProcessRequest()
    public var mounts: [MountRequest] = []
    /// Devices already resolved on the host (major/minor known).
    public var devices: [DeviceRequest] = []
    public var resources = ResourceRequest()
    public var security = SecurityRequest()
    public var sandbox = SandboxContext()
    public var annotations: [String: String] = [:]
    /// Text of the image's /etc/passwd and /etc/group, read safely from the rootfs by the caller;
    /// nil when the image has none.
    public var passwd: String?
    public var group: String?
    public var defaults = RuntimeDefaults()

    public init(id: String, rootfs: String) {
        self.id = id
        self.rootfs = rootfs
    }

    /// From the image config (OCI `config` object).
    public struct ImageDefaults: Sendable {
        public var entrypoint: [String] = []
        public var cmd: [String] = []
        public var env: [String] = []
        public var workingDir = ""
        public var user = ""
        public init() {}
    }

    public struct ProcessRequest: Sendable {
        public var command: [String] = []
        public var args: [String] = []
        public var env: [(key: String, value: String)] = []
        public var workingDir = ""
        public var tty = false
        public var stdin = false
        public init() {}
    }

    public struct MountRequest: Sendable, Equatable {
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

    public struct DeviceRequest: Sendable, Equatable {
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

    public struct ResourceRequest: Sendable {
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

    public struct SecurityRequest: Sendable {
        public var privileged = false
        public var readonlyRootfs = false
        public var noNewPrivileges = false
        public var addCapabilities: [String] = []
        public var dropCapabilities: [String] = []
        /// KEP-2763: added to every set including ambient and inheritable, so a non-root
        /// process keeps them across execve.
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
        /// The seccomp profile chosen (`SeccompPolicy`) and loaded by the service; the builder
        /// compiles it against the final capability set. Privileged containers get none.
        public var seccomp = SeccompInput.unconfined
        public var appArmor = AppArmorDecision.none
        /// nil where SELinux is off: no labels in the spec.
        public var selinux: SELinuxLabels?
        public init() {}
    }

    /// What the pod provides: namespaces to join and files to bind-mount.
    public struct SandboxContext: Sendable {
        /// Namespace files to join; nil network means the host's network namespace.
        public var networkNamespace: String?
        public var hostNetwork = false
        public var ipcNamespace: String?
        public var utsNamespace: String?
        /// Set when the pod shares one PID namespace; nil with `hostPID` false creates a new one.
        public var pidNamespace: String?
        public var hostPID = false
        public var hostIPC = false
        public var hostname = ""
        public var hostsFile: String?
        public var hostnameFile: String?
        public var resolvConf: String?
        public var shmPath: String?
        public var cgroupParent = ""
        /// The pod's sysctls (validated by `PodSysctls`, defaults merged in), set in every
        /// container of the pod: the namespaces they belong to are shared, so writing them again
        /// is harmless, and pods without an infra container have nothing else to set them.
        public var sysctls: [String: String] = [:]
        /// The pod's own user namespace to join, with its mappings (runc needs them as well as
        /// the path); nil for the host's.
        public var userNamespace: (path: String, uid: IDMap, gid: IDMap)?
        public init() {}
    }

    public struct RuntimeDefaults: Sendable {
        public var capabilities: [String] = []
        public var cgroupManager = CgroupManager.cgroupfs
        /// The lowest oom_score_adj this daemon may set (0 without CAP_SYS_RESOURCE).
        public var minimumOOMScoreAdj = -1000
        /// The daemon's bounding set in CAP_ form; nil means every capability. runc fails to
        /// apply a capability outside it ("unable to apply caps"), so requests are cut to it.
        public var boundingCapabilities: [String]?
        /// Whether the runtime handler knows the `rro` mount option.
        public var recursiveReadOnlySupported = false
        public var pidsLimit: Int64 = 0
        /// What this host's cgroup hierarchy can limit (`CgroupHost.detect()`); limits it cannot
        /// take are left out and listed in the notes. nil leaves everything in.
        public var cgroupControllers: CgroupControllers?
        /// Architecture and kernel for the seccomp profile's conditions; an unknown machine
        /// leaves the architecture list out (the runtime's native one only).
        public var securityHost = SecurityHost(machine: "")
        public init() {}
    }
}
