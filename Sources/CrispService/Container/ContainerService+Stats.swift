public import CrispCore
public import CrispRuntime
public import CrispStorage
import Foundation

/// One container's resource use, for ContainerStats and ListContainerStats.
public struct ContainerStatsValue: Sendable {
    public var record: ContainerRecord
    /// nil when the container has no cgroup (not running, or the systemd driver's layout).
    public var sample: CgroupSample?
    /// CPU rate since the previous sample of the same container; nil on the first one.
    public var nanoCores: UInt64?
    public var writableLayer: FilesystemUsage?
    public var timestamp: Int64
}

extension ContainerService {
    public func stats(_ id: String) async throws(CrispError) -> ContainerStatsValue {
        let c = try lookup(id)
        return await stats(of: c)
    }

    public func listStats(_ filter: ContainerFilter) async -> [ContainerStatsValue] {
        var out: [ContainerStatsValue] = []
        for c in list(filter) { out.append(await stats(of: c)) }
        return out
    }

    /// `knownPod` is the container's pod when the caller has it already (pod stats), saving a lookup.
    func stats(of c: ContainerRecord, in knownPod: Sandbox? = nil) async -> ContainerStatsValue {
        var value = ContainerStatsValue(record: c, sample: nil, nanoCores: nil, writableLayer: nil, timestamp: SandboxService.now())
        var pod = knownPod
        if pod == nil, case .running = c.lifecycle { pod = try? await sandboxes.status(c.sandboxID) }
        if case .running = c.lifecycle, let pod {
            let path = CgroupPaths.directory(manager: settings.cgroupManager, parent: pod.cgroupParent, id: c.id)
            if let s = cgroups.sample(path: path) {
                if let previous = lastSamples[c.id] { value.nanoCores = CgroupReader.nanoCores(from: previous, to: s) }
                lastSamples[c.id] = s
                value.sample = s
            }
        }
        value.writableLayer = try? await storage.containerUsage(ContainerID(uncheckedRawValue: c.id))
        return value
    }
}
