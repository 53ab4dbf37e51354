import CRIAPI
import CrispService
import GRPCCore

/// GetContainerEvents: the kubelet's evented PLEG. Each event carries the pod's status and its
/// containers' statuses as they are when the event is sent.
extension RuntimeService {
    func containerEvents(_ writer: RPCWriter<Runtime_V1_ContainerEventResponse>) async throws {
        for await event in events.subscribe() {
            try await writer.write(await response(for: event))
        }
    }

    func response(for event: LifecycleEvent) async -> Runtime_V1_ContainerEventResponse {
        var out = Runtime_V1_ContainerEventResponse()
        out.containerID = event.id
        out.createdAt = event.at
        out.containerEventType = switch event.kind {
        case .created: .containerCreatedEvent
        case .started: .containerStartedEvent
        case .stopped: .containerStoppedEvent
        case .deleted: .containerDeletedEvent
        }
        if let pod = try? await sandboxes.status(event.sandboxID) {
            out.podSandboxStatus = Self.criStatus(pod)
            var filter = ContainerFilter()
            filter.sandboxID = pod.id
            out.containersStatuses = await containers.list(filter).map(Self.criStatus)
        }
        return out
    }
}
