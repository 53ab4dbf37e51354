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

    public typealias MountRequest = ContainerMountRequest
    public typealias DeviceRequest = ContainerDeviceRequest
    public typealias ResourceRequest = ContainerResourceRequest

    /// What the container asked for (`context`, read through as `security.privileged` and so
    /// on), and what crisp decided for seccomp, AppArmor and SELinux.
    @dynamicMemberLookup
    public struct SecurityRequest: Sendable {
        public var context = ContainerSecurityContext()

        public subscript<T>(dynamicMember field: WritableKeyPath<ContainerSecurityContext, T>) -> T {
            get { context[keyPath: field] }
            set { context[keyPath: field] = newValue }
        }

        /// The seccomp profile chosen (`SeccompPolicy`) and loaded by the service; the builder
        /// compiles it against the final capability set. Privileged containers get none.
        public var seccomp = SeccompInput.unconfined
        public var appArmor = AppArmorDecision.none
        /// nil where SELinux is off: no labels in the spec.
        public var selinux: SELinuxLabels?
        public init() {}

        /// What the container asked for; seccomp, AppArmor and SELinux are decided after.
        public init(_ c: ContainerSecurityContext) { context = c }
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
