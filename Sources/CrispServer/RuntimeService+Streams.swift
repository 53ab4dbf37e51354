import CRIAPI
import GRPCCore

/// The streaming list RPCs (StreamPodSandboxes, StreamContainers, StreamContainerStats,
/// StreamPodSandboxStats, StreamImages): the same answers as their List* twins, sent in pages so
/// that no single message has to hold every item of a large node.
enum StreamPaging {
    static let pageSize = 500

    static func send<Item, Response: Sendable>(_ items: [Item], _ writer: RPCWriter<Response>,
                                               _ make: ([Item]) -> Response) async throws {
        var start = 0
        repeat {
            let end = min(start + pageSize, items.count)
            try await writer.write(make(Array(items[start..<end])))
            start = end
        } while start < items.count
    }
}

extension RuntimeService {
    func registerStreams<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Runtime_V1_RuntimeService.Method
        router.serverStreaming(M.StreamPodSandboxes.descriptor) { (r: Runtime_V1_StreamPodSandboxesRequest, _, w: RPCWriter<Runtime_V1_StreamPodSandboxesResponse>) in
            var list = Runtime_V1_ListPodSandboxRequest()
            if r.hasFilter { list.filter = r.filter }
            try await StreamPaging.send(try await listPodSandbox(list).items, w) { page in
                var out = Runtime_V1_StreamPodSandboxesResponse()
                out.podSandboxes = page
                return out
            }
        }
        router.serverStreaming(M.StreamContainers.descriptor) { (r: Runtime_V1_StreamContainersRequest, _, w: RPCWriter<Runtime_V1_StreamContainersResponse>) in
            var list = Runtime_V1_ListContainersRequest()
            if r.hasFilter { list.filter = r.filter }
            try await StreamPaging.send(try await listContainers(list).containers, w) { page in
                var out = Runtime_V1_StreamContainersResponse()
                out.containers = page
                return out
            }
        }
        router.serverStreaming(M.StreamContainerStats.descriptor) { (r: Runtime_V1_StreamContainerStatsRequest, _, w: RPCWriter<Runtime_V1_StreamContainerStatsResponse>) in
            var list = Runtime_V1_ListContainerStatsRequest()
            if r.hasFilter { list.filter = r.filter }
            try await StreamPaging.send(try await listContainerStats(list).stats, w) { page in
                var out = Runtime_V1_StreamContainerStatsResponse()
                out.containerStats = page
                return out
            }
        }
        router.serverStreaming(M.StreamPodSandboxStats.descriptor) { (r: Runtime_V1_StreamPodSandboxStatsRequest, _, w: RPCWriter<Runtime_V1_StreamPodSandboxStatsResponse>) in
            var list = Runtime_V1_ListPodSandboxStatsRequest()
            if r.hasFilter { list.filter = r.filter }
            try await StreamPaging.send(try await listPodSandboxStats(list).stats, w) { page in
                var out = Runtime_V1_StreamPodSandboxStatsResponse()
                out.podSandboxStats = page
                return out
            }
        }
    }
}
