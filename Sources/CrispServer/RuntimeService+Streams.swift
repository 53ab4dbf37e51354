import CRIAPI
import GRPCCore
import GRPCProtobuf
import SwiftProtobuf

/// The streaming list RPCs (StreamPodSandboxes, StreamContainers, StreamContainerStats,
/// StreamPodSandboxStats, StreamPodSandboxMetrics, StreamImages): the same answers as their List* twins, sent in pages so
/// that no single message has to hold every item of a large node.
extension RPCRouter {
    static var streamPageSize: Int { 500 }

    /// Registers a server-streaming list method: `items` answers the request, `page` wraps a
    /// slice of the answer into one response message.
    mutating func pagedList<Input: SwiftProtobuf.Message & Sendable, Output: SwiftProtobuf.Message & Sendable, Item: Sendable>(
        _ method: MethodDescriptor,
        items: @escaping @Sendable (Input) async throws -> [Item],
        page: @escaping @Sendable ([Item]) -> Output
    ) {
        serverStreaming(method) { (request: Input, _, writer: RPCWriter<Output>) in
            let all = try await items(request)
            var start = 0
            repeat {
                let end = min(start + Self.streamPageSize, all.count)
                try await writer.write(page(Array(all[start..<end])))
                start = end
            } while start < all.count
        }
    }
}

extension RuntimeService {
    func registerStreams<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Runtime_V1_RuntimeService.Method
        router.pagedList(M.StreamPodSandboxes.descriptor, items: { (r: Runtime_V1_StreamPodSandboxesRequest) in
            var list = Runtime_V1_ListPodSandboxRequest()
            if r.hasFilter { list.filter = r.filter }
            return try await listPodSandbox(list).items
        }, page: { items in Runtime_V1_StreamPodSandboxesResponse.with { $0.podSandboxes = items } })
        router.pagedList(M.StreamContainers.descriptor, items: { (r: Runtime_V1_StreamContainersRequest) in
            var list = Runtime_V1_ListContainersRequest()
            if r.hasFilter { list.filter = r.filter }
            return try await listContainers(list).containers
        }, page: { items in Runtime_V1_StreamContainersResponse.with { $0.containers = items } })
        router.pagedList(M.StreamContainerStats.descriptor, items: { (r: Runtime_V1_StreamContainerStatsRequest) in
            var list = Runtime_V1_ListContainerStatsRequest()
            if r.hasFilter { list.filter = r.filter }
            return try await listContainerStats(list).stats
        }, page: { items in Runtime_V1_StreamContainerStatsResponse.with { $0.containerStats = items } })
        router.pagedList(M.StreamPodSandboxStats.descriptor, items: { (r: Runtime_V1_StreamPodSandboxStatsRequest) in
            var list = Runtime_V1_ListPodSandboxStatsRequest()
            if r.hasFilter { list.filter = r.filter }
            return try await listPodSandboxStats(list).stats
        }, page: { items in Runtime_V1_StreamPodSandboxStatsResponse.with { $0.podSandboxStats = items } })
        router.pagedList(M.StreamPodSandboxMetrics.descriptor, items: { (_: Runtime_V1_StreamPodSandboxMetricsRequest) in
            try await listPodSandboxMetrics(Runtime_V1_ListPodSandboxMetricsRequest()).podMetrics
        }, page: { items in Runtime_V1_StreamPodSandboxMetricsResponse.with { $0.podSandboxMetrics = items } })
    }
}
