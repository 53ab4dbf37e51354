import CRIAPI
import CrispCore
import CrispService

/// CheckpointContainer (KEP-2008). Restore has no RPC of its own: CreateContainer takes the
/// archive's path as the image, and StartContainer brings the processes back.
extension RuntimeService {
    func checkpointContainer(_ r: Runtime_V1_CheckpointContainerRequest) async throws -> Runtime_V1_CheckpointContainerResponse {
        guard !r.containerID.isEmpty else { throw CrispError.invalidArgument("CheckpointContainer: container_id is empty") }
        guard !r.location.isEmpty else { throw CrispError.invalidArgument("CheckpointContainer: location is empty; name the archive to write") }
        guard r.timeout >= 0 else { throw CrispError.invalidArgument("CheckpointContainer: timeout \(r.timeout) is negative") }
        // The kubelet sends its request timeout (2 minutes unless set); crictl may send none.
        try await containers.checkpoint(r.containerID, location: r.location, timeout: CRITimeout.duration(seconds: r.timeout > 0 ? r.timeout : 300))
        return Runtime_V1_CheckpointContainerResponse()
    }
}
