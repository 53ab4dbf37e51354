import CrispCore
import CRIAPI
import CrispService

/// ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats.
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
            s.cpu = cpu(sample, nanoCores: v.nanoCores, at: v.timestamp)
            s.memory = memory(sample, at: v.timestamp)
        }
        if let w = v.writableLayer {
            s.writableLayer.timestamp = v.timestamp
            s.writableLayer.fsID.mountpoint = w.mountpoint
            s.writableLayer.usedBytes.value = w.usedBytes
            s.writableLayer.inodesUsed.value = w.inodesUsed
        }
        return s
    }

    func podSandboxStats(_ r: Runtime_V1_PodSandboxStatsRequest) async throws -> Runtime_V1_PodSandboxStatsResponse {
        var out = Runtime_V1_PodSandboxStatsResponse()
        out.stats = Self.criStats(try await containers.podStats(r.podSandboxID))
        return out
    }

    func listPodSandboxStats(_ r: Runtime_V1_ListPodSandboxStatsRequest) async throws -> Runtime_V1_ListPodSandboxStatsResponse {
        var filter = SandboxFilter()
        if r.hasFilter {
            filter.id = r.filter.id.isEmpty ? nil : r.filter.id
            filter.labels = r.filter.labelSelector
        }
        var out = Runtime_V1_ListPodSandboxStatsResponse()
        out.stats = await containers.listPodStats(filter).map(Self.criStats)
        return out
    }

    static func criStats(_ v: PodStatsValue) -> Runtime_V1_PodSandboxStats {
        var s = Runtime_V1_PodSandboxStats()
        s.attributes.id = v.sandbox.id
        s.attributes.metadata = metadata(v.sandbox)
        s.attributes.labels = v.sandbox.labels
        s.attributes.annotations = v.sandbox.annotations
        if let sample = v.sample {
            s.linux.cpu = cpu(sample, nanoCores: v.nanoCores, at: v.timestamp)
            s.linux.memory = memory(sample, at: v.timestamp)
            s.linux.process.timestamp = v.timestamp
            s.linux.process.processCount.value = sample.processes
        }
        if !v.interfaces.isEmpty {
            s.linux.network.timestamp = v.timestamp
            let all = v.interfaces.map { i in
                var x = Runtime_V1_NetworkInterfaceUsage()
                x.name = i.name
                x.rxBytes.value = i.rxBytes
                x.rxErrors.value = i.rxErrors
                x.txBytes.value = i.txBytes
                x.txErrors.value = i.txErrors
                return x
            }
            // CNI names the pod's interface eth0; it is the kubelet's default interface.
            if let eth0 = all.first(where: { $0.name == "eth0" }) ?? all.first { s.linux.network.defaultInterface = eth0 }
            s.linux.network.interfaces = all
        }
        s.linux.containers = v.containers.map(criStats)
        return s
    }

    static func cpu(_ sample: CgroupSample, nanoCores: UInt64?, at timestamp: Int64) -> Runtime_V1_CpuUsage {
        var c = Runtime_V1_CpuUsage()
        c.timestamp = timestamp
        c.usageCoreNanoSeconds.value = sample.cpuUsageNanos
        if let nanoCores { c.usageNanoCores.value = nanoCores }
        return c
    }

    static func memory(_ sample: CgroupSample, at timestamp: Int64) -> Runtime_V1_MemoryUsage {
        var m = Runtime_V1_MemoryUsage()
        m.timestamp = timestamp
        m.workingSetBytes.value = sample.memoryWorkingSetBytes
        m.usageBytes.value = sample.memoryUsageBytes
        m.rssBytes.value = sample.memoryRSSBytes
        m.pageFaults.value = sample.pageFaults
        m.majorPageFaults.value = sample.majorPageFaults
        return m
    }
}
