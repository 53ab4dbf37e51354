public import CrispCore
public import CrispSecurity
public import Foundation
public import CrispNetwork

/// A pod as crisp keeps it: what the kubelet asked for plus what crisp made for it. Persisted as
/// JSON (atomically) under `root/sandboxes/ID/sandbox.json`, so it survives a daemon restart.
public struct Sandbox: Codable, Sendable, Equatable {
    public struct Metadata: Codable, Sendable, Equatable, Hashable {
        public var name: String
        public var uid: String
        public var namespace: String
        public var attempt: UInt32
        public init(name: String, uid: String, namespace: String, attempt: UInt32) {
            self.name = name
            self.uid = uid
            self.namespace = namespace
            self.attempt = attempt
        }
        /// The reservation key: two pods with the same metadata cannot exist at once.
        var key: String { "\(name)_\(namespace)_\(uid)_\(attempt)" }
    }

    public enum State: String, Codable, Sendable { case ready, notReady }

    public var id: String
    public var metadata: Metadata
    public var labels: [String: String]
    public var annotations: [String: String]
    /// Nanoseconds since the epoch, as the CRI reports times.
    public var createdAt: Int64
    public var state: State
    public var runtimeHandler: String
    public var hostname: String
    public var logDirectory: String
    public var hostNetwork: Bool
    public var hostIPC: Bool
    public var hostPID: Bool
    /// All containers of the pod share one PID namespace (the infra process's).
    public var sharedPID: Bool
    public var cgroupParent: String
    /// The infra process; 0 for pods without one.
    public var infraPID: Int32
    /// Where the pod's own files live (hostname, hosts, resolv.conf, shm).
    public var runDirectory: String
    public var shmMounted: Bool
    /// Pod IPs from CNI (IPv4 first); empty for host-network pods.
    public var ips: [String] = []
    /// The pinned network namespace; nil for host-network pods.
    public var netnsPath: String?
    /// The pinned IPC and UTS namespaces (crisp-pinns); nil when the pod uses the host's.
    public var ipcnsPath: String?
    public var utsnsPath: String?
    /// The storage container holding the infra root filesystem when it comes from `pause_image`;
    /// nil when crisp's own pause program is used.
    public var infraStorageID: String?
    /// The sysctls every container of the pod sets: the pod's own over `default_sysctls`,
    /// validated and dotted. nil in records written before they were kept.
    public var sysctls: [String: String]?
    /// The pod's SELinux MCS level (`s0:cX,cY`), reserved while it lives; nil where SELinux is off.
    public var mcsLevel: String?
    public var privileged: Bool?
    /// The pod's own user namespace (POD mode): its pin and its one uid and gid mapping; nil
    /// for pods in the host's user namespace.
    public var usernsPath: String?
    public var uidMap: IDMap?
    public var gidMap: IDMap?
    /// StopPodSandbox has deleted the infra container from the runtime (after its exit, while
    /// CNI DEL ran), so RemovePodSandbox has nothing left to ask the runtime. nil in records
    /// written before this was kept, and for pods whose infra is still there.
    public var infraDeleted: Bool?

    /// Like CRI-O without an infra container by default: one runs only to hold a PID namespace
    /// that the pod's containers share; every other namespace is pinned by crisp-pinns.
    public var hasInfra: Bool { sharedPID }

    public var hostnamePath: String { runDirectory + "/hostname" }
    public var hostsPath: String { runDirectory + "/hosts" }
    public var resolvConfPath: String { runDirectory + "/resolv.conf" }
    public var shmPath: String { runDirectory + "/shm" }
}

/// What RunPodSandbox asks for, translated from the CRI message.
public struct RunSandboxRequest: Sendable {
    public var metadata: Sandbox.Metadata
    public var hostname = ""
    public var logDirectory = ""
    public var labels: [String: String] = [:]
    public var annotations: [String: String] = [:]
    public var runtimeHandler = ""
    public var hostNetwork = false
    public var hostIPC = false
    public var hostPID = false
    public var sharedPID = false
    public var cgroupParent = ""
    public var dnsServers: [String] = []
    public var dnsSearches: [String] = []
    public var dnsOptions: [String] = []
    public var sysctls: [String: String] = [:]
    public var portMappings: [PortMapping] = []
    /// The pod's security context: applied to its infra container; SELinux options give the
    /// pod's MCS level.
    public var privileged = false
    public var seccomp = ProfileRequest.unset
    public var appArmor = ProfileRequest.unset
    public var selinux: SELinuxOptions?
    /// `userns_options`; NODE (the host's) when the request has none.
    public var userNamespaceMode = UserNamespacePolicy.Mode.node
    public var uidMappings: [IDMap] = []
    public var gidMappings: [IDMap] = []

    public init(metadata: Sandbox.Metadata) { self.metadata = metadata }
}

/// ListPodSandbox's filter; nil fields match everything.
public struct SandboxFilter: Sendable {
    public var id: String?
    public var state: Sandbox.State?
    public var labels: [String: String] = [:]
    public init(id: String? = nil, state: Sandbox.State? = nil, labels: [String: String] = [:]) {
        self.id = id
        self.state = state
        self.labels = labels
    }

    func matches(_ s: Sandbox) -> Bool {
        if let id, !id.isEmpty, !s.id.hasPrefix(id) { return false }
        if let state, s.state != state { return false }
        return labels.allSatisfy { s.labels[$0.key] == $0.value }
    }
}
