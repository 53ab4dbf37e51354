import CrispCore
import Logging

extension PodNetworkManager {
    /// The first half of a set-up: undoes what an interrupted one left, resolves the default
    /// network's plugins and creates the netns. A pod already set up gets its cached attachment.
    func prepareLocked(_ request: PodNetworkRequest) async throws(CrispError) -> PreparedPodNetwork {
        let pod = request.pod
        let name = netnsName(podID: pod.id)
        if let existing = try cache.load(podID: pod.id) {
            if let doc = existing.result, namespaces.exists(name: name) {
                let a = try attachment(existing, doc)
                return PreparedPodNetwork(request: request, network: try existing.network(), capabilityArgs: [:],
                                          netnsPath: a.netnsPath, attached: a)
            }
            // A setUp that crashed half-way: undo what it left before starting over.
            logger.info("cleaning up an interrupted pod network set-up", metadata: ["pod": "\(pod.id)"])
            try await tearDownLocked(podID: pod.id)
        } else if namespaces.exists(name: name) {
            try await namespaces.remove(name: name)
        }
        guard let network = watcher.defaultNetwork else {
            let r = watcher.readiness
            throw .failedPrecondition("cannot set up the network of pod \(pod.namespace)/\(pod.name): \(r.message)")
        }
        // A bad port mapping or a missing plugin fails here, before a netns or an IP exists.
        let caps = try CNICapabilities.arguments(portMappings: request.portMappings, annotations: request.annotations)
        _ = try runner.resolve(network)
        let netns = try await namespaces.create(name: name, userNamespace: request.userNamespace)
        return PreparedPodNetwork(request: request, network: network, capabilityArgs: caps, netnsPath: netns, attached: nil)
    }

    /// The second half: CNI ADD in the prepared netns, with the cache written before (so a crash
    /// during ADD can still be undone with DEL) and after. On failure DEL runs, and the netns and
    /// cache entry are removed.
    func attachLocked(_ prepared: PreparedPodNetwork) async throws(CrispError) -> PodNetworkAttachment {
        if let a = prepared.attached { return a }
        let request = prepared.request, pod = request.pod, network = prepared.network, netns = prepared.netnsPath
        let name = netnsName(podID: pod.id)
        let rt = CNIRuntimeConf(containerID: pod.id, netnsPath: netns, ifName: options.ifName, args: pod.cniArgs,
                                capabilityArgs: prepared.capabilityArgs)
        var stage = "cache"
        var added = false
        do throws(CrispError) {
            try cache.store(CNICacheEntry(network: network, runtime: rt, pod: pod, result: nil), podID: pod.id)
            stage = "add"
            added = true
            let result = try await runner.add(network, rt)
            stage = "cache"
            try cache.store(CNICacheEntry(network: network, runtime: rt, pod: pod, result: result.document), podID: pod.id)
            logger.info("pod network set up", metadata: [
                "pod": "\(pod.namespace)/\(pod.name)", "id": "\(pod.id)", "network": "\(network.name)",
                "ips": "\(result.podIPs.joined(separator: ","))"])
            return PodNetworkAttachment(podID: pod.id, netnsPath: netns, networkName: network.name, ips: result.podIPs,
                                        result: result)
        } catch let failure {
            logger.warning("pod network set-up failed, rolling back", metadata: [
                "pod": "\(pod.namespace)/\(pod.name)", "stage": "\(stage)", "error": "\(failure)"])
            if added {
                // Every plugin's DEL must tolerate an attachment it never made, so the whole list
                // is deleted: that releases whatever the plugins before the failing one created.
                do { try await runner.del(network, rt, prevResult: nil) } catch let delError {
                    logger.error("CNI DEL during rollback failed; the cache entry is kept for a later tearDown",
                                 metadata: ["pod": "\(pod.id)", "error": "\(delError)"])
                    try? await namespaces.remove(name: name)
                    throw CrispError(failure.code, "\(failure.message); rollback DEL also failed: \(delError.message)",
                                     cause: failure.cause)
                }
            }
            try? cache.remove(podID: pod.id)
            do { try await namespaces.remove(name: name) } catch {
                logger.error("removing the netns during rollback failed", metadata: ["netns": "\(netns)", "error": "\(error)"])
            }
            throw failure
        }
    }

    func tearDownLocked(podID: String) async throws(CrispError) {
        let name = netnsName(podID: podID)
        if let entry = try cache.load(podID: podID) {
            let network = try entry.network()
            var rt = entry.runtime
            // DEL still runs without the netns (plugins then release IPAM and host-side state).
            if !namespaces.exists(name: name) { rt.netnsPath = "" }
            try await runner.del(network, rt, prevResult: entry.result)
            logger.info("pod network torn down", metadata: ["id": "\(podID)", "network": "\(network.name)"])
        }
        try await namespaces.remove(name: name)
        try cache.remove(podID: podID)
    }
}
