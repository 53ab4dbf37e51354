public import CrispCore
public import CrispRuntime
import CrispOS
import Foundation

/// Traffic counters of one interface of a pod's network namespace.
public struct InterfaceStats: Sendable, Equatable {
    public var name: String
    public var rxBytes: UInt64
    public var rxErrors: UInt64
    public var txBytes: UInt64
    public var txErrors: UInt64
    public var rxPackets: UInt64 = 0
    public var rxDropped: UInt64 = 0
    public var txPackets: UInt64 = 0
    public var txDropped: UInt64 = 0
}

/// A pod's resource use, for PodSandboxStats and ListPodSandboxStats.
public struct PodStatsValue: Sendable {
    public var sandbox: Sandbox
    /// The pod's own cgroup (its cgroup parent) when it has one, else its containers' added up.
    public var sample: CgroupSample?
    public var nanoCores: UInt64?
    /// Empty for host-network pods (the node's interfaces are not the pod's).
    public var interfaces: [InterfaceStats]
    public var containers: [ContainerStatsValue]
    public var timestamp: Int64
}

extension ContainerService {
    public func podStats(_ id: String) async throws(CrispError) -> PodStatsValue {
        await podStats(of: try await sandboxes.status(id))
    }

    public func listPodStats(_ filter: SandboxFilter) async -> [PodStatsValue] {
        var out: [PodStatsValue] = []
        // Stats are for pods that run; a stopped pod has no cgroup or network left to read.
        for pod in await sandboxes.list(filter) where pod.state == .ready { out.append(await podStats(of: pod)) }
        return out
    }

    func podStats(of pod: Sandbox) async -> PodStatsValue {
        let now = Date()
        var members: [ContainerStatsValue] = []
        for c in containers.values where c.sandboxID == pod.id { members.append(await stats(of: c, in: pod)) }
        var sample: CgroupSample?
        if let dir = CgroupPaths.parentDirectory(manager: settings.cgroupManager, parent: pod.cgroupParent) {
            sample = cgroups.sample(path: dir, at: now)
        }
        if sample == nil {
            var parts = members.compactMap(\.sample)
            if pod.hasInfra, pod.state == .ready,
               let infra = cgroups.sample(path: CgroupPaths.directory(manager: settings.cgroupManager, parent: pod.cgroupParent, id: pod.id), at: now) {
                parts.append(infra)
            }
            sample = CgroupSample.sum(parts, at: now)
        }
        var value = PodStatsValue(sandbox: pod, sample: sample, nanoCores: nil, interfaces: [], containers: members,
                                  timestamp: SandboxService.now())
        let key = "pod/" + pod.id
        if let sample {
            if let previous = lastSamples[key] { value.nanoCores = CgroupReader.nanoCores(from: previous, to: sample) }
            lastSamples[key] = sample
        }
        if !pod.hostNetwork, let pid = anyPID(of: pod) {
            value.interfaces = Self.interfaces(fromProcNetDev: readSmallFile("/proc/\(pid)/net/dev") ?? "")
        }
        return value
    }

    /// A process inside the pod's network namespace: the infra process, or any running container's.
    func anyPID(of pod: Sandbox) -> Int32? {
        if pod.hasInfra && pod.infraPID > 0 && pod.state == .ready { return pod.infraPID }
        for c in containers.values where c.sandboxID == pod.id {
            if case .running(let pid, _) = c.lifecycle, pid > 0 { return pid }
        }
        return nil
    }

    /// Parses /proc/PID/net/dev (two header lines, then "name: rx-bytes packets errs … tx-bytes
    /// packets errs …"); loopback is left out, as the kubelet does.
    static func interfaces(fromProcNetDev text: String) -> [InterfaceStats] {
        text.split(separator: "\n").dropFirst(2).compactMap { line in
            let halves = line.split(separator: ":", maxSplits: 1)
            guard halves.count == 2 else { return nil }
            let name = halves[0].trimmingCharacters(in: .whitespaces)
            let f = halves[1].split(separator: " ").compactMap { UInt64($0) }
            guard name != "lo", f.count >= 11 else { return nil }
            guard f.count >= 12 else {
                return InterfaceStats(name: name, rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10])
            }
            return InterfaceStats(name: name, rxBytes: f[0], rxErrors: f[2], txBytes: f[8], txErrors: f[10],
                                  rxPackets: f[1], rxDropped: f[3], txPackets: f[9], txDropped: f[11])
        }
    }
}
