public import CrispCore
import Logging

extension PodNetworkManager {
    /// NetworkReady including the plugins' own STATUS for a 1.1.0+ default network: not ready
    /// (reason `NetworkPluginNotReady`, the plugin's message) when a plugin's STATUS fails. For
    /// older configs this equals `readiness`.
    public func pluginReadiness() async -> NetworkReadiness {
        let base = watcher.readiness
        guard base.ready, let net = watcher.defaultNetwork else { return base }
        do {
            try await runner.status(net)
            return base
        } catch {
            return NetworkReadiness(ready: false, reason: NetworkReadiness.notReadyReason,
                                    message: "Network plugin returns error: \(error.message)")
        }
    }

    /// Runs CNI GC (1.1.0+ configs) for every network that has cached attachments or is the
    /// default, telling plugins that only the attachments of `validPodIDs` are still in use.
    /// Cache entries of other pods are left alone: they are torn down by `tearDown`.
    public func garbageCollect(validPodIDs: Set<String>) async throws(CrispError) {
        var networks: [String: CNINetworkConfigList] = [:]
        var valid: [String: [(containerID: String, ifName: String)]] = [:]
        for id in cache.podIDs() {
            guard let e = try? cache.load(podID: id), let net = try? e.network() else { continue }
            networks[net.name] = networks[net.name] ?? net
            if validPodIDs.contains(id) { valid[net.name, default: []].append((e.runtime.containerID, e.runtime.ifName)) }
        }
        if let d = watcher.defaultNetwork { networks[d.name] = d }
        for (name, net) in networks.sorted(by: { $0.key < $1.key }) {
            try await runner.gc(net, validAttachments: valid[name] ?? [])
        }
    }
}
