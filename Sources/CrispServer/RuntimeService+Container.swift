import CRIAPI
import CrispCore
import CrispService
import Foundation
import CrispRuntime
import CrispStorage

/// CreateContainer, StartContainer, StopContainer, RemoveContainer, ContainerStatus, ListContainers.
extension RuntimeService {
    func createContainer(_ r: Runtime_V1_CreateContainerRequest) async throws -> Runtime_V1_CreateContainerResponse {
        let c = r.config
        var req = CreateContainerRequest(sandboxID: r.podSandboxID, name: c.metadata.name, image: c.image.image)
        req.attempt = c.metadata.attempt
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
        req.mounts = c.mounts.map { (containerPath: $0.containerPath, hostPath: $0.hostPath, readonly: $0.readonly) }
        let sc = c.linux.securityContext
        req.privileged = sc.privileged
        req.readonlyRootfs = sc.readonlyRootfs
        req.noNewPrivileges = sc.noNewPrivs
        req.addCapabilities = sc.capabilities.addCapabilities
        req.dropCapabilities = sc.capabilities.dropCapabilities
        if sc.hasRunAsUser { req.runAsUser = sc.runAsUser.value }
        req.runAsUsername = sc.runAsUsername
        if sc.hasRunAsGroup { req.runAsGroup = sc.runAsGroup.value }
        req.supplementalGroups = sc.supplementalGroups
        let res = c.linux.resources
        req.cpuShares = res.cpuShares
        req.cpuQuota = res.cpuQuota
        req.cpuPeriod = res.cpuPeriod
        req.memoryLimit = res.memoryLimitInBytes
        req.oomScoreAdj = res.oomScoreAdj
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
        try await containers.stop(r.containerID, timeout: .seconds(max(0, r.timeout)))
        return Runtime_V1_StopContainerResponse()
    }

    func removeContainer(_ r: Runtime_V1_RemoveContainerRequest) async throws -> Runtime_V1_RemoveContainerResponse {
        try await containers.remove(r.containerID)
        return Runtime_V1_RemoveContainerResponse()
    }

    func containerStatus(_ r: Runtime_V1_ContainerStatusRequest) async throws -> Runtime_V1_ContainerStatusResponse {
        let c = try await containers.status(r.containerID)
        var st = Runtime_V1_ContainerStatus()
        st.id = c.id
        st.metadata.name = c.name
        st.metadata.attempt = c.attempt
        st.createdAt = c.createdAt
        st.image.image = c.image
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
            return x
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
        var out = Runtime_V1_ContainerStatusResponse()
        out.status = st
        return out
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
            x.image.image = c.image
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
                                                   timeout: r.timeout > 0 ? .seconds(r.timeout) : nil)
        var out = Runtime_V1_ExecSyncResponse()
        out.stdout = Data(result.stdout)
        out.stderr = Data(result.stderr)
        out.exitCode = result.exitCode
        return out
    }
}

/// ContainerStats and ListContainerStats.
extension RuntimeService {
    func containerStats(_ r: Runtime_V1_ContainerStatsRequest) async throws -> Runtime_V1_ContainerStatsResponse {
        var out = Runtime_V1_ContainerStatsResponse()
        out.stats = Self.criStats(try await containers.stats(r.containerID))
        return out
    }

    func listContainerStats(_ r: Runtime_V1_ListContainerStatsRequest) async throws -> Runtime_V1_ListContainerStatsResponse {
        let filter = r.hasFilter
            ? Self.containerFilter(id: r.filter.id, podSandboxID: r.filter.podSandboxID, labels: r.filter.labelSelector)
            : ContainerFilter()
        var out = Runtime_V1_ListContainerStatsResponse()
        out.stats = await containers.listStats(filter).map(Self.criStats)
        return out
    }

    static func criStats(_ v: ContainerStatsValue) -> Runtime_V1_ContainerStats {
        var s = Runtime_V1_ContainerStats()
        s.attributes.id = v.record.id
        s.attributes.metadata.name = v.record.name
        s.attributes.metadata.attempt = v.record.attempt
        s.attributes.labels = v.record.labels
        s.attributes.annotations = v.record.annotations
        if let sample = v.sample {
            s.cpu.timestamp = v.timestamp
            s.cpu.usageCoreNanoSeconds.value = sample.cpuUsageNanos
            if let n = v.nanoCores { s.cpu.usageNanoCores.value = n }
            s.memory.timestamp = v.timestamp
            s.memory.workingSetBytes.value = sample.memoryWorkingSetBytes
            s.memory.usageBytes.value = sample.memoryUsageBytes
            s.memory.rssBytes.value = sample.memoryRSSBytes
            s.memory.pageFaults.value = sample.pageFaults
            s.memory.majorPageFaults.value = sample.majorPageFaults
        }
        if let w = v.writableLayer {
            s.writableLayer.timestamp = v.timestamp
            s.writableLayer.fsID.mountpoint = w.mountpoint
            s.writableLayer.usedBytes.value = w.usedBytes
            s.writableLayer.inodesUsed.value = w.inodesUsed
        }
        return s
    }
}

/// UpdateContainerResources and ReopenContainerLog.
extension RuntimeService {
    func updateContainerResources(_ r: Runtime_V1_UpdateContainerResourcesRequest) async throws -> Runtime_V1_UpdateContainerResourcesResponse {
        let l = r.linux
        var u = ResourceUpdate()
        u.cpuShares = l.cpuShares
        u.cpuQuota = l.cpuQuota
        u.cpuPeriod = l.cpuPeriod
        u.cpusetCPUs = l.cpusetCpus
        u.cpusetMems = l.cpusetMems
        u.memoryLimit = l.memoryLimitInBytes
        u.memorySwapLimit = l.memorySwapLimitInBytes
        try await containers.update(r.containerID, u)
        return Runtime_V1_UpdateContainerResourcesResponse()
    }

    func reopenContainerLog(_ r: Runtime_V1_ReopenContainerLogRequest) async throws -> Runtime_V1_ReopenContainerLogResponse {
        try await containers.reopenLog(r.containerID)
        return Runtime_V1_ReopenContainerLogResponse()
    }
}
