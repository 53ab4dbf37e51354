import CRIAPI
import CrispService
import GRPCCore
import GRPCProtobuf

/// GetContainerEvents: the kubelet's evented PLEG. Each event carries the pod's status and its
/// containers' statuses as they are when the event is sent.
extension RuntimeService {
    /// The subscription is taken before the handler returns, that is before the response headers
    /// go out: a client holding them sees every event from then on. (The kubelet relists after
    /// subscribing; a test can wait for the headers instead of sleeping.)
    func registerContainerEvents<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: Runtime_V1_RuntimeService.Method.GetContainerEvents.descriptor,
                               deserializer: ProtobufDeserializer<Runtime_V1_GetEventsRequest>(),
                               serializer: ProtobufSerializer<Runtime_V1_ContainerEventResponse>()) { request, _ in
            _ = try await ServerRequest(stream: request)
            let subscription = events.subscribe()
            return StreamingServerResponse(of: Runtime_V1_ContainerEventResponse.self) { writer in
                for await event in subscription {
                    try await writer.write(await response(for: event))
                }
                return [:]
            }
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
