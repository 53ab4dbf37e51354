public import CrispCore

extension ContainerService {
    /// StopPodSandbox: the pod's containers are killed (the kubelet has given them their grace
    /// period already), then the pod is stopped. A pod that does not exist is stopped already, as
    /// the CRI asks; every other failure is reported. In particular a NotFound from inside the
    /// teardown (a CNI plugin missing, a file gone) must not reach the kubelet as NotFound: it
    /// would take the pod for stopped and leak its network namespace and IP.
    public func stopPod(_ idOrPrefix: String) async throws(CrispError) {
        let pod: Sandbox
        do { pod = try await sandboxes.status(idOrPrefix) } catch where error.code == .notFound { return }
        do {
            try await stopAll(inSandbox: pod.id, timeout: .zero)
            try await sandboxes.stop(pod.id)
        } catch where error.code == .notFound {
            throw CrispError(.internal, "stopping pod \(pod.id) failed: \(error.message)", cause: error.cause)
        }
    }

    /// RemovePodSandbox: the pod's containers, then the pod. Removing an unknown pod succeeds.
    public func removePod(_ idOrPrefix: String) async throws(CrispError) {
        let pod: Sandbox
        do { pod = try await sandboxes.status(idOrPrefix) } catch where error.code == .notFound { return }
        do {
            try await removeAll(inSandbox: pod.id)
            try await sandboxes.remove(pod.id)
        } catch where error.code == .notFound {
            throw CrispError(.internal, "removing pod \(pod.id) failed: \(error.message)", cause: error.cause)
        }
    }
}
