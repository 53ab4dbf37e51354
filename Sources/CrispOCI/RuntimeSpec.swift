/// The OCI runtime specification (config.json of a bundle), as far as crisp writes it.
/// Field names follow the spec exactly; optional fields are left out of the JSON when nil.
public struct RuntimeSpec: Codable, Sendable, Equatable {
    public var ociVersion = "1.0.2"
    public var process: Process?
    public var root: Root?
    public var hostname: String?
    public var mounts: [Mount]?
    public var annotations: [String: String]?
    public var linux: Linux?

    public init() {}

    public struct Process: Codable, Sendable, Equatable {
        public var terminal: Bool?
        public var user = User()
        public var args: [String] = []
        public var env: [String]?
        public var cwd = "/"
        public var capabilities: Capabilities?
        public var rlimits: [Rlimit]?
        public var noNewPrivileges: Bool?
        public var oomScoreAdj: Int?
        public var apparmorProfile: String?
        public var selinuxLabel: String?
        public init() {}
    }

    public struct User: Codable, Sendable, Equatable {
        public var uid: UInt32 = 0
        public var gid: UInt32 = 0
        public var umask: UInt32?
        public var additionalGids: [UInt32]?
        public var username: String?
        public init(uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32]? = nil) {
            self.uid = uid
            self.gid = gid
            self.additionalGids = additionalGids
        }
    }

    public struct Capabilities: Codable, Sendable, Equatable {
        public var bounding: [String]?
        public var effective: [String]?
        public var inheritable: [String]?
        public var permitted: [String]?
        public var ambient: [String]?
        public init(all: [String]) {
            bounding = all
            effective = all
            permitted = all
            inheritable = nil
            ambient = nil
        }
    }

    public struct Rlimit: Codable, Sendable, Equatable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64
        public init(type: String, hard: UInt64, soft: UInt64) {
            self.type = type
            self.hard = hard
            self.soft = soft
        }
    }

    public struct Root: Codable, Sendable, Equatable {
        public var path: String
        public var readonly: Bool?
        public init(path: String, readonly: Bool? = nil) {
            self.path = path
            self.readonly = readonly
        }
    }

    public struct Mount: Codable, Sendable, Equatable {
        public var destination: String
        public var type: String?
        public var source: String?
        public var options: [String]?
        public init(destination: String, type: String? = nil, source: String? = nil, options: [String]? = nil) {
            self.destination = destination
            self.type = type
            self.source = source
            self.options = options
        }
    }

    public struct Linux: Codable, Sendable, Equatable {
        public var namespaces: [Namespace]?
        public var uidMappings: [IDMapping]?
        public var gidMappings: [IDMapping]?
        public var devices: [Device]?
        public var cgroupsPath: String?
        public var resources: Resources?
        public var sysctl: [String: String]?
        public var seccomp: Seccomp?
        public var maskedPaths: [String]?
        public var readonlyPaths: [String]?
        public var rootfsPropagation: String?
        public var mountLabel: String?
        public init() {}
    }

    public struct Namespace: Codable, Sendable, Equatable {
        /// pid, network, mount, ipc, uts, user, cgroup
        public var type: String
        /// A namespace file to join; nil creates a new namespace.
        public var path: String?
        public init(type: String, path: String? = nil) {
            self.type = type
            self.path = path
        }
    }

    public struct IDMapping: Codable, Sendable, Equatable {
        public var containerID: UInt32
        public var hostID: UInt32
        public var size: UInt32
        public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
            self.containerID = containerID
            self.hostID = hostID
            self.size = size
        }
    }

    public struct Device: Codable, Sendable, Equatable {
        public var type: String
        public var path: String
        public var major: Int64?
        public var minor: Int64?
        public var fileMode: UInt32?
        public var uid: UInt32?
        public var gid: UInt32?
        public init(type: String, path: String, major: Int64?, minor: Int64?, fileMode: UInt32? = nil,
                    uid: UInt32? = nil, gid: UInt32? = nil) {
            self.type = type
            self.path = path
            self.major = major
            self.minor = minor
            self.fileMode = fileMode
            self.uid = uid
            self.gid = gid
        }
    }

    public struct Resources: Codable, Sendable, Equatable {
        public var devices: [DeviceCgroup]?
        public var memory: Memory?
        public var cpu: CPU?
        public var pids: Pids?
        public var hugepageLimits: [HugepageLimit]?
        public var blockIO: BlockIO?
        /// RDMA limits per device name.
        public var rdma: [String: RDMA]?
        public var unified: [String: String]?
        public init() {}
    }

    /// The blkio (v1) or io (v2) controller's weights.
    public struct BlockIO: Codable, Sendable, Equatable {
        public var weight: UInt16?
        public var leafWeight: UInt16?
        public init(weight: UInt16? = nil) { self.weight = weight }
    }

    public struct RDMA: Codable, Sendable, Equatable {
        public var hcaHandles: UInt32?
        public var hcaObjects: UInt32?
        public init(hcaHandles: UInt32? = nil, hcaObjects: UInt32? = nil) {
            self.hcaHandles = hcaHandles
            self.hcaObjects = hcaObjects
        }
    }

    public struct DeviceCgroup: Codable, Sendable, Equatable {
        public var allow: Bool
        public var type: String?
        public var major: Int64?
        public var minor: Int64?
        public var access: String?
        public init(allow: Bool, type: String? = nil, major: Int64? = nil, minor: Int64? = nil, access: String? = nil) {
            self.allow = allow
            self.type = type
            self.major = major
            self.minor = minor
            self.access = access
        }
    }

    public struct Memory: Codable, Sendable, Equatable {
        public var limit: Int64?
        public var reservation: Int64?
        public var swap: Int64?
        public init() {}
    }

    public struct CPU: Codable, Sendable, Equatable {
        public var shares: UInt64?
        public var quota: Int64?
        public var period: UInt64?
        public var cpus: String?
        public var mems: String?
        public init() {}
    }

    public struct Pids: Codable, Sendable, Equatable {
        public var limit: Int64
        public init(limit: Int64) { self.limit = limit }
    }

    public struct HugepageLimit: Codable, Sendable, Equatable {
        public var pageSize: String
        public var limit: UInt64
        public init(pageSize: String, limit: UInt64) {
            self.pageSize = pageSize
            self.limit = limit
        }
    }

    /// `linux.seccomp`: what runc hands to libseccomp. Syscall names the runtime's libseccomp
    /// does not know for an architecture are skipped by runc, so one list serves every kernel.
    public struct Seccomp: Codable, Sendable, Equatable {
        public var defaultAction: String
        public var defaultErrnoRet: UInt32?
        public var architectures: [String]?
        public var flags: [String]?
        public var syscalls: [Syscall]?
        public init(defaultAction: String, defaultErrnoRet: UInt32? = nil, architectures: [String]? = nil,
                    flags: [String]? = nil, syscalls: [Syscall]? = nil) {
            self.defaultAction = defaultAction
            self.defaultErrnoRet = defaultErrnoRet
            self.architectures = architectures
            self.flags = flags
            self.syscalls = syscalls
        }

        public struct Syscall: Codable, Sendable, Equatable {
            public var names: [String]
            public var action: String
            public var errnoRet: UInt32?
            public var args: [Arg]?
            public init(names: [String], action: String, errnoRet: UInt32? = nil, args: [Arg]? = nil) {
                self.names = names
                self.action = action
                self.errnoRet = errnoRet
                self.args = args
            }
        }

        public struct Arg: Codable, Sendable, Equatable {
            public var index: UInt
            public var value: UInt64
            public var valueTwo: UInt64?
            public var op: String
            public init(index: UInt, value: UInt64, valueTwo: UInt64? = nil, op: String) {
                self.index = index
                self.value = value
                self.valueTwo = valueTwo
                self.op = op
            }
        }
    }
}
