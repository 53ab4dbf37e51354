public import Foundation
public import CrispCore
public import CrispRuntime
public import CrispOCI
public import CrispSecurity

/// A container as crisp keeps it, persisted as JSON under `root/containers/ID/container.json`.
public struct ContainerRecord: Codable, Sendable, Equatable {
    /// Each state carries only what is valid in it.
    public enum Lifecycle: Codable, Sendable, Equatable {
        case created
        case running(pid: Int32, startedAt: Int64)
        case exited(exitCode: Int32, startedAt: Int64, finishedAt: Int64, reason: String)
    }

    public var id: String
    public var sandboxID: String
    public var name: String
    public var attempt: UInt32
    /// The image as the request named it, and the resolved image id (`sha256:…`).
    public var image: String
    public var imageID: String
    /// The image as the pod spec named it (the kubelet sends its resolved id as `image` and this
    /// beside it); nil when the request gave none, or in records written before it was kept.
    public var userSpecifiedImage: String?
    public var labels: [String: String]
    public var annotations: [String: String]
    public var createdAt: Int64
    public var lifecycle: Lifecycle
    public var logPath: String
    public var runtimeHandler: String
    public var stopSignal: Signal
    public var bundle: String
    /// The process spec, kept to run ExecSync with the same user, environment and capabilities.
    public var processJSON: Data
    public var mounts: [MountInfo]
    /// The container process's pid as the runtime reported it at create (conmon's pid file), so
    /// start needs no extra `runc state`.
    public var createdPID: Int32?
    /// The Linux resources as requested at create and changed by UpdateContainerResources, for
    /// ContainerStatus; nil in records written before they were kept.
    public var resources: Resources?
    /// Whether conmon keeps the container's stdin open for attach, and closes it after the first
    /// attach detaches; nil (false) in records written before they were kept.
    public var stdin: Bool?
    public var stdinOnce: Bool?
    /// What the container runs under, for ContainerStatus verbose info: the seccomp profile
    /// (`RuntimeDefault`, `Unconfined`, `localhost/PATH`), the AppArmor profile and SELinux
    /// label ("" for none). nil in records written before they were kept.
    public var security: AppliedSecurity?
    /// The root filesystem is crisp's own overlay of idmapped layers (a pod with its own user
    /// namespace), mounted under the container's record rather than by storage.
    public var idmappedRootfs: Bool?
    /// When the container was last checkpointed (nanoseconds), for ContainerStatus verbose info.
    public var checkpointedAt: Int64?
    /// Created from a checkpoint archive: the directory its contents were unpacked into, which
    /// StartContainer restores from (then nil), and whether it was restored.
    public var restoreFrom: String?
    public var restored: Bool?

    public struct AppliedSecurity: Codable, Sendable, Equatable {
        public var seccompProfile: String
        public var appArmorProfile: String
        public var selinuxLabel: String
        public var privileged: Bool
    }

    /// CRI's LinuxContainerResources, as the container has them now.
    public struct Resources: Codable, Sendable, Equatable {
        public var cpuPeriod: Int64 = 0
        public var cpuQuota: Int64 = 0
        public var cpuShares: Int64 = 0
        public var memoryLimit: Int64 = 0
        public var memorySwapLimit: Int64 = 0
        public var oomScoreAdj: Int64 = 0
        public var cpusetCPUs = ""
        public var cpusetMems = ""
        public var hugepageLimits: [String: UInt64] = [:]
        public var unified: [String: String] = [:]

        /// The limits as they went into the container's spec: what the host's cgroups could not
        /// take (hugepage limits without hugetlb, swap without accounting) is not reported.
        public init(applied r: RuntimeSpec.Resources?, oomScoreAdj: Int) {
            self.init()
            if let r { apply(r) }
            self.oomScoreAdj = Int64(oomScoreAdj)
        }

        init() {}

        /// Takes the limits `r` sets; the ones it leaves unset are kept, as
        /// UpdateContainerResources leaves zero and empty fields alone.
        public mutating func apply(_ r: RuntimeSpec.Resources) {
            if let cpu = r.cpu {
                if let v = cpu.period { cpuPeriod = Int64(clamping: v) }
                if let v = cpu.quota { cpuQuota = v }
                if let v = cpu.shares { cpuShares = Int64(clamping: v) }
                if let v = cpu.cpus { cpusetCPUs = v }
                if let v = cpu.mems { cpusetMems = v }
            }
            if let memory = r.memory, let limit = memory.limit {
                memoryLimit = limit
                memorySwapLimit = memory.swap ?? 0
            }
            for h in r.hugepageLimits ?? [] { hugepageLimits[h.pageSize] = h.limit }
            for (k, v) in r.unified ?? [:] { unified[k] = v }
        }
    }

    public struct MountInfo: Codable, Sendable, Equatable {
        public var containerPath: String
        public var hostPath: String
        public var readonly: Bool
        /// nil in records written before propagation was kept: private.
        public var propagation: ContainerMountRequest.Propagation?
        /// nil in records written before it was kept: false.
        public var recursiveReadOnly: Bool?
    }

    public var reservationKey: String { "\(name)_\(sandboxID)_\(attempt)" }
}

/// ListContainers' filter; nil fields match everything.
public struct ContainerFilter: Sendable {
    public enum State: Sendable { case created, running, exited }
    public var id: String?
    public var sandboxID: String?
    public var state: State?
    public var labels: [String: String] = [:]
    public init() {}

    func matches(_ c: ContainerRecord) -> Bool {
        if let id, !id.isEmpty, !c.id.hasPrefix(id) { return false }
        if let sandboxID, !sandboxID.isEmpty, !c.sandboxID.hasPrefix(sandboxID) { return false }
        if let state {
            switch (state, c.lifecycle) {
            case (.created, .created), (.running, .running), (.exited, .exited): break
            default: return false
            }
        }
        return labels.allSatisfy { c.labels[$0.key] == $0.value }
    }
}

/// What CreateContainer asks for, translated from the CRI message.
public struct CreateContainerRequest: Sendable {
    public var sandboxID: String
    public var name: String
    public var attempt: UInt32 = 0
    public var image: String
    /// `image.user_specified_image`: what the person wrote, reported back in status.
    public var userSpecifiedImage = ""
    public var command: [String] = []
    public var args: [String] = []
    public var env: [(key: String, value: String)] = []
    public var workingDir = ""
    public var labels: [String: String] = [:]
    public var annotations: [String: String] = [:]
    /// Relative to the pod's log directory.
    public var logPath = ""
    public var tty = false
    public var stdin = false
    public var stdinOnce = false
    public var mounts: [ContainerMountRequest] = []
    /// Host device nodes (or directories of them) to give the container.
    public var devices: [(containerPath: String, hostPath: String, permissions: String)] = []
    /// Capabilities, users, read-only rootfs, masked paths: passed to the spec builder as they are.
    public var security = ContainerSecurityContext()
    public var resources = ContainerResourceRequest()
    /// The seccomp and AppArmor profiles asked for, and SELinux options (nil: none given).
    public var seccomp = ProfileRequest.unset
    public var appArmor = ProfileRequest.unset
    public var selinux: SELinuxOptions?

    public init(sandboxID: String, name: String, image: String) {
        self.sandboxID = sandboxID
        self.name = name
        self.image = image
    }
}

extension ContainerRecord {
    /// The identity the container's first process runs with (ContainerStatus.user): uid, gid and
    /// every supplementary group, from the process spec the runtime was given.
    public var processUser: (uid: Int64, gid: Int64, supplementalGroups: [Int64])? {
        guard let process = try? JSONDecoder().decode(RuntimeSpec.Process.self, from: processJSON) else { return nil }
        let user = process.user
        return (Int64(user.uid), Int64(user.gid), (user.additionalGids ?? []).map(Int64.init))
    }
}
