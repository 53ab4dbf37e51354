import CrispCore
import Logging

extension PodNetworkManager {
    func setUpLocked(_ request: PodNetworkRequest) async throws(CrispError) -> PodNetworkAttachment {
        let pod = request.pod
        let name = netnsName(podID: pod.id)
        if let existing = try cache.load(podID: pod.id) {
            if let doc = existing.result, namespaces.exists(name: name) { return try attachment(existing, doc) }
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
        let caps = try CNICapabilities.arguments(portMappings: request.portMappings, annotations: request.annotations)
        // A missing plugin fails here, before a netns or an IP exists.
        _ = try runner.resolve(network)

        let netns = try await namespaces.create(name: name, userNamespace: request.userNamespace)
        let rt = CNIRuntimeConf(containerID: pod.id, netnsPath: netns, ifName: options.ifName, args: pod.cniArgs,
                                capabilityArgs: caps)
        var stage = "cache"
        var added = false
        do throws(CrispError) {
            // Written before ADD so that a crash during ADD can still be undone with DEL.
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
