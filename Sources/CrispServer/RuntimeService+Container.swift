import CRIAPI
import CrispCore
import CrispService
import Foundation

/// CreateContainer, StartContainer, StopContainer, RemoveContainer, ContainerStatus, ListContainers.
extension RuntimeService {
    func createContainer(_ r: Runtime_V1_CreateContainerRequest) async throws -> Runtime_V1_CreateContainerResponse {
        let c = r.config
        var req = CreateContainerRequest(sandboxID: r.podSandboxID, name: c.metadata.name, image: c.image.image)
        req.attempt = c.metadata.attempt
        req.userSpecifiedImage = c.image.userSpecifiedImage
        req.command = c.command
        req.args = c.args
        req.env = c.envs.map { (key: $0.key, value: $0.value) }
        req.workingDir = c.workingDir
        req.labels = c.labels
        req.annotations = c.annotations
        req.logPath = c.logPath
        req.tty = c.tty
        req.stdin = c.stdin
        req.stdinOnce = c.stdinOnce
        req.mounts = c.mounts.map { m in
            let propagation: ContainerMountRequest.Propagation = switch m.propagation {
            case .propagationHostToContainer: .hostToContainer
            case .propagationBidirectional: .bidirectional
            default: .private
            }
            var out = ContainerMountRequest(containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly,
                                                      propagation: propagation, recursiveReadOnly: m.recursiveReadOnly)
            out.uidMappings = m.uidMappings.map { IDMap(containerID: $0.containerID, hostID: $0.hostID, length: $0.length) }
            out.gidMappings = m.gidMappings.map { IDMap(containerID: $0.containerID, hostID: $0.hostID, length: $0.length) }
            out.selinuxRelabel = m.selinuxRelabel
            return out
        }
        req.devices = c.devices.map { (containerPath: $0.containerPath, hostPath: $0.hostPath, permissions: $0.permissions) }
        let sc = c.linux.securityContext
        req.security.privileged = sc.privileged
        req.security.readonlyRootfs = sc.readonlyRootfs
        req.security.noNewPrivileges = sc.noNewPrivs
        req.security.addCapabilities = sc.capabilities.addCapabilities
        req.security.dropCapabilities = sc.capabilities.dropCapabilities
        req.security.addAmbientCapabilities = sc.capabilities.addAmbientCapabilities
        if sc.hasRunAsUser { req.security.runAsUser = sc.runAsUser.value }
        req.security.runAsUsername = sc.runAsUsername
        if sc.hasRunAsGroup { req.security.runAsGroup = sc.runAsGroup.value }
        req.security.supplementalGroups = sc.supplementalGroups
        req.security.strictSupplementalGroups = sc.supplementalGroupsPolicy == .strict
        req.security.maskedPaths = sc.maskedPaths
        req.security.readonlyPaths = sc.readonlyPaths
        req.seccomp = try SecurityProfiles.request(has: sc.hasSeccomp, sc.seccomp, deprecated: sc.seccompProfilePath,
                                                  field: "container \(c.metadata.name) seccomp")
        req.appArmor = try SecurityProfiles.request(has: sc.hasApparmor, sc.apparmor, deprecated: sc.apparmorProfile,
                                                   field: "container \(c.metadata.name) apparmor")
        req.selinux = SecurityProfiles.selinux(has: sc.hasSelinuxOptions, sc.selinuxOptions)
        req.resources = try Self.resources(c.linux.resources)
        let record = try await containers.create(req)
        var out = Runtime_V1_CreateContainerResponse()
        out.containerID = record.id
        return out
    }

    func startContainer(_ r: Runtime_V1_StartContainerRequest) async throws -> Runtime_V1_StartContainerResponse {
        try await containers.start(r.containerID)
        return Runtime_V1_StartContainerResponse()
    }

    func stopContainer(_ r: Runtime_V1_StopContainerRequest) async throws -> Runtime_V1_StopContainerResponse {
        try await containers.stop(r.containerID, timeout: CRITimeout.duration(seconds: r.timeout))
        return Runtime_V1_StopContainerResponse()
    }

    func removeContainer(_ r: Runtime_V1_RemoveContainerRequest) async throws -> Runtime_V1_RemoveContainerResponse {
        try await containers.remove(r.containerID)
        return Runtime_V1_RemoveContainerResponse()
    }

    func containerStatus(_ r: Runtime_V1_ContainerStatusRequest) async throws -> Runtime_V1_ContainerStatusResponse {
        var out = Runtime_V1_ContainerStatusResponse()
        let c = try await containers.status(r.containerID)
        out.status = Self.criStatus(c)
        if r.verbose { out.info = ["info": Self.verboseInfo(c)] }
        return out
    }

    /// As CRI-O: the image the person named, so the pod's status shows `busybox:1.37` rather
    /// than the id the kubelet resolved it to (which stays in `imageRef`).
    static func imageSpec(_ c: ContainerRecord) -> Runtime_V1_ImageSpec {
        var spec = Runtime_V1_ImageSpec()
        spec.image = c.userSpecifiedImage ?? c.image
        spec.userSpecifiedImage = c.userSpecifiedImage ?? ""
        return spec
    }

    static func criStatus(_ c: ContainerRecord) -> Runtime_V1_ContainerStatus {
        var st = Runtime_V1_ContainerStatus()
        st.id = c.id
        st.metadata.name = c.name
        st.metadata.attempt = c.attempt
        st.createdAt = c.createdAt
        st.image = Self.imageSpec(c)
        st.imageRef = c.imageID
        st.imageID = c.imageID
        st.labels = c.labels
        st.annotations = c.annotations
        st.logPath = c.logPath
        st.mounts = c.mounts.map { m in
            var x = Runtime_V1_Mount()
            x.containerPath = m.containerPath
            x.hostPath = m.hostPath
            x.readonly = m.readonly
            x.recursiveReadOnly = m.recursiveReadOnly ?? false
            x.propagation = switch m.propagation ?? .private {
            case .private: .propagationPrivate
            case .hostToContainer: .propagationHostToContainer
            case .bidirectional: .propagationBidirectional
            }
            return x
        }
        if let r = c.resources {
            var l = Runtime_V1_LinuxContainerResources()
            l.cpuPeriod = r.cpuPeriod
            l.cpuQuota = r.cpuQuota
            l.cpuShares = r.cpuShares
            l.memoryLimitInBytes = r.memoryLimit
            l.memorySwapLimitInBytes = r.memorySwapLimit
            l.oomScoreAdj = r.oomScoreAdj
            l.cpusetCpus = r.cpusetCPUs
            l.cpusetMems = r.cpusetMems
            l.hugepageLimits = r.hugepageLimits.sorted { $0.key < $1.key }.map { size, limit in
                var h = Runtime_V1_HugepageLimit()
                h.pageSize = size
                h.limit = limit
                return h
            }
            l.unified = r.unified
            st.resources.linux = l
        }
        if let u = c.processUser {
            st.user.linux.uid = u.uid
            st.user.linux.gid = u.gid
            st.user.linux.supplementalGroups = u.supplementalGroups
        }
        st.state = Self.criState(c.lifecycle)
        switch c.lifecycle {
        case .created:
            break
        case .running(_, let started):
            st.startedAt = started
        case .exited(let code, let started, let finished, let reason):
            st.startedAt = started
            st.finishedAt = finished
            st.exitCode = code
            st.reason = reason
        }
        return st
    }

    /// The id, pod and label parts shared by ListContainers' and ListContainerStats' filters.
    static func containerFilter(id: String, podSandboxID: String, labels: [String: String]) -> ContainerFilter {
        var filter = ContainerFilter()
        filter.id = id
        filter.sandboxID = podSandboxID
        filter.labels = labels
        return filter
    }

    static func criState(_ lifecycle: ContainerRecord.Lifecycle) -> Runtime_V1_ContainerState {
        switch lifecycle {
        case .created: .containerCreated
        case .running: .containerRunning
        case .exited: .containerExited
        }
    }

    func listContainers(_ r: Runtime_V1_ListContainersRequest) async throws -> Runtime_V1_ListContainersResponse {
        var filter = ContainerFilter()
        if r.hasFilter {
            filter = Self.containerFilter(id: r.filter.id, podSandboxID: r.filter.podSandboxID, labels: r.filter.labelSelector)
            if r.filter.hasState {
                switch r.filter.state.state {
                case .containerCreated: filter.state = .created
                case .containerRunning: filter.state = .running
                case .containerExited: filter.state = .exited
                default: break
                }
            }
        }
        var out = Runtime_V1_ListContainersResponse()
        out.containers = await containers.list(filter).map { c in
            var x = Runtime_V1_Container()
            x.id = c.id
            x.podSandboxID = c.sandboxID
            x.metadata.name = c.name
            x.metadata.attempt = c.attempt
            x.image = Self.imageSpec(c)
            x.imageRef = c.imageID
            x.imageID = c.imageID
            x.createdAt = c.createdAt
            x.labels = c.labels
            x.annotations = c.annotations
            x.state = Self.criState(c.lifecycle)
            return x
        }
        return out
    }

    func execSync(_ r: Runtime_V1_ExecSyncRequest) async throws -> Runtime_V1_ExecSyncResponse {
        let result = try await containers.execSync(r.containerID, command: r.cmd,
                                                   timeout: r.timeout > 0 ? CRITimeout.duration(seconds: r.timeout) : nil)
        var out = Runtime_V1_ExecSyncResponse()
        out.stdout = Data(result.stdout)
        out.stderr = Data(result.stderr)
        out.exitCode = result.exitCode
        return out
    }
}

/// UpdateContainerResources and ReopenContainerLog.
extension RuntimeService {
    /// The kernel's largest CFS quota (2^44 - 1 µs); a larger one fails in the runtime.
    static let maximumCPUQuota: Int64 = (1 << 44) - 1
    /// CRI-O's floor: a container limited below 12 MiB is killed before it starts, or the kernel
    /// refuses the limit of one that already uses more.
    static let minimumMemoryLimit: Int64 = 12 << 20

    /// CRI resources as the spec builder takes them, for CreateContainer and
    /// UpdateContainerResources alike.
    /// Values the kernel would refuse, or read as something else, are refused here with the field
    /// named; they used to be clamped or passed on, so a negative limit was accepted and ignored.
    static func resources(_ l: Runtime_V1_LinuxContainerResources) throws(CrispError) -> ContainerResourceRequest {
        func refuse(_ field: String, _ value: Int64, _ rule: String) -> CrispError {
            .invalidArgument("linux resources: \(field) \(value) is out of range (\(rule))")
        }
        guard l.cpuShares >= 0 else { throw refuse("cpu_shares", l.cpuShares, "0 for unset, or positive") }
        guard l.cpuPeriod == 0 || (1000...1_000_000).contains(l.cpuPeriod) else {
            throw refuse("cpu_period", l.cpuPeriod, "0 for unset, or 1000 to 1000000 microseconds")
        }
        guard l.cpuQuota >= -1, l.cpuQuota <= 0 || (1000...maximumCPUQuota).contains(l.cpuQuota) else {
            throw refuse("cpu_quota", l.cpuQuota, "-1 for unlimited, 0 for unset, or 1000 to \(maximumCPUQuota) microseconds")
        }
        guard l.memoryLimitInBytes == 0 || l.memoryLimitInBytes >= minimumMemoryLimit else {
            throw refuse("memory_limit_in_bytes", l.memoryLimitInBytes, "0 for unset, or at least \(minimumMemoryLimit) bytes (12 MiB)")
        }
        guard l.memorySwapLimitInBytes >= -1 else {
            throw refuse("memory_swap_limit_in_bytes", l.memorySwapLimitInBytes, "-1 for unlimited, 0 for unset, or positive")
        }
        guard (-1000...1000).contains(l.oomScoreAdj) else { throw refuse("oom_score_adj", l.oomScoreAdj, "-1000 to 1000") }
        var r = ContainerResourceRequest()
        r.cpuShares = UInt64(l.cpuShares)
        r.cpuQuota = l.cpuQuota
        r.cpuPeriod = UInt64(l.cpuPeriod)
        r.cpusetCPUs = l.cpusetCpus
        r.cpusetMems = l.cpusetMems
        r.memoryLimit = l.memoryLimitInBytes
        r.memorySwapLimit = l.memorySwapLimitInBytes
        r.oomScoreAdj = Int(l.oomScoreAdj)
        r.hugepageLimits = l.hugepageLimits.map { (pageSize: $0.pageSize, limit: $0.limit) }
        r.unified = l.unified
        return r
    }

    func updateContainerResources(_ r: Runtime_V1_UpdateContainerResourcesRequest) async throws -> Runtime_V1_UpdateContainerResourcesResponse {
        try await containers.update(r.containerID, try Self.resources(r.linux))
        return Runtime_V1_UpdateContainerResourcesResponse()
    }

    func reopenContainerLog(_ r: Runtime_V1_ReopenContainerLogRequest) async throws -> Runtime_V1_ReopenContainerLogResponse {
        try await containers.reopenLog(r.containerID)
        return Runtime_V1_ReopenContainerLogResponse()
    }

    /// CRI-O's verbose shape (`sandboxID`, `pid`, `privileged`), plus what the container runs
    /// under: seccomp and AppArmor profiles, SELinux label.
    static func verboseInfo(_ c: ContainerRecord) -> String {
        struct Info: Encodable {
            var sandboxID: String
            var pid: Int32?
            var privileged: Bool
            var seccompProfile: String?
            var apparmorProfile: String?
            var selinuxLabel: String?
            /// As CRI-O: when the container was last checkpointed, and whether it was restored.
            var checkpointedAt: String?
            var restored: Bool?
        }
        var pid: Int32?
        if case .running(let p, _) = c.lifecycle { pid = p }
        let info = Info(sandboxID: c.sandboxID, pid: pid, privileged: c.security?.privileged ?? false,
                        seccompProfile: c.security?.seccompProfile, apparmorProfile: c.security?.appArmorProfile,
                        selinuxLabel: c.security?.selinuxLabel,
                        checkpointedAt: c.checkpointedAt.map { Date(timeIntervalSince1970: Double($0) / 1e9).formatted(.iso8601) },
                        restored: c.restored)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(info)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
