public import CrispCore

/// The effective crisp configuration: one struct per TOML table, built-in defaults in the
/// initialisers. Plain values; the daemon hands each library its own slice.
public struct CrispConfiguration: Sendable, Equatable {
    /// `[crisp]`
    public var root = "/var/lib/crisp"
    public var runRoot = "/run/crisp"
    public var logLevel = "info"
    public var storageDriver = "overlay"
    public var storageOptions: [String] = []
    public var storageSync = StorageSync.none

    public var api = API()
    public var runtime = Runtime()
    public var image = Image()
    public var network = Network()
    public var metrics = Metrics()

    public init() {}

    /// `[crisp.api]`
    public struct API: Sendable, Equatable {
        public var listen = "/run/crisp/crisp.sock"
        public var streamAddress = "127.0.0.1"
        public var streamPort = 0
        public var streamIdleTimeout = 4 * 3600
        public var streamEnableTLS = false
        public var streamTLSCert = ""
        public var streamTLSKey = ""
        public var streamTLSCA = ""
        public var grpcMaxSendMsgSize = 80 * 1024 * 1024
        public var grpcMaxRecvMsgSize = 80 * 1024 * 1024
        public init() {}
    }

    /// `[crisp.runtime]`
    public struct Runtime: Sendable, Equatable {
        public var defaultRuntime = "runc"
        public var runtimes: [String: Handler] = [
            "runc": Handler(runtimePath: "/usr/sbin/runc", runtimeRoot: "/run/runc", runtimeType: "oci"),
            "crun": Handler(runtimePath: "/usr/bin/crun", runtimeRoot: "/run/crun", runtimeType: "oci"),
        ]
        public var conmon = "/usr/bin/conmon"
        public var cgroupManager = CgroupManager.cgroupfs
        public var defaultCapabilities = [
            "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP",
            "NET_BIND_SERVICE", "KILL",
        ]
        public var defaultSysctls: [String] = []
        public var pidsLimit = 0
        public var logSizeMax = -1
        public var seccompProfile = ""
        public var seccompUseDefaultWhenEmpty = true
        public var enableCriuSupport = false
        public var appArmorProfile = "crisp-default"
        public init() {}

        /// `[crisp.runtime.runtimes.NAME]`
        public struct Handler: Sendable, Equatable {
            public var runtimePath: String
            public var runtimeRoot: String
            public var runtimeType: String
            public init(runtimePath: String = "", runtimeRoot: String = "", runtimeType: String = "oci") {
                self.runtimePath = runtimePath
                self.runtimeRoot = runtimeRoot
                self.runtimeType = runtimeType
            }
        }
    }

    /// `[crisp.image]`
    public struct Image: Sendable, Equatable {
        public var pauseImage = "registry.k8s.io/pause:3.10"
        public var pauseCommand = "/pause"
        public var registriesConf = "/etc/containers/registries.conf"
        public var signaturePolicy = "/etc/containers/policy.json"
        public var globalAuthFile = ""
        public var imageVolumes = ImageVolumes.mkdir
        public var maxParallelDownloads = 3
        public var pullProgressTimeout = 60
        public var allowForeignLayerURLs = false
        public init() {}
    }

    /// `[crisp.network]`
    public struct Network: Sendable, Equatable {
        public var networkDir = "/etc/cni/net.d"
        public var pluginDirs = ["/opt/cni/bin", "/usr/lib/cni"]
        public var cniDefaultNetwork = ""
        public init() {}
    }

    /// `[crisp.metrics]`
    public struct Metrics: Sendable, Equatable {
        public var enableMetrics = false
        public var metricsPort = 9090
        public init() {}
    }
}

extension CrispConfiguration {
    /// Where the daemon's exclusive lock lives: one crispd per root.
    public var daemonLockPath: String { root + "/crispd.lock" }
}
