import IntegrationSupport
import CRIAPI
import Foundation
import GRPCCore
import Testing

/// The CRI metrics RPCs (KEP-2371) against a running container: descriptors with cAdvisor's
/// names, values for the container that match what its cgroup and the pod report, and the
/// streaming twin.
@Suite(.serialized) struct MetricsTests {
    typealias Lifecycle = CRI

    @Test func descriptorsAndValuesForARunningContainer() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let descriptors = try await runtime.listMetricDescriptors(Runtime_V1_ListMetricDescriptorsRequest()).descriptors
            let byName = Dictionary(uniqueKeysWithValues: descriptors.map { ($0.name, $0) })
            for name in ["container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss",
                         "container_memory_cache", "container_memory_usage_bytes", "container_memory_failcnt",
                         "container_oom_events_total", "container_processes", "container_threads",
                         "container_network_receive_bytes_total", "container_spec_memory_limit_bytes"] {
                #expect(byName[name] != nil, "no descriptor \(name)")
            }
            #expect(byName["container_memory_rss"]?.labelKeys == ["container", "id", "image", "name", "namespace", "pod"])

            let pod = try await Lifecycle.runPod(runtime, "metrics", world: world)
            let id = try await Lifecycle.startContainer(runtime, pod: pod, "measured", ["/bin/sleep", "3600"]) {
                $0.linux.resources.memoryLimitInBytes = 64 << 20
            }
            let pods = try await runtime.listPodSandboxMetrics(Runtime_V1_ListPodSandboxMetricsRequest()).podMetrics
            let mine = try #require(pods.first { $0.podSandboxID == pod.id })
            let container = try #require(mine.containerMetrics.first { $0.containerID == id })
            let values = Dictionary(container.metrics.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for name in Set(byName.keys) where byName[name]?.labelKeys.contains("interface") == false {
                #expect(values[name] != nil, "container lacks \(name)")
            }
            #expect((values["container_memory_working_set_bytes"]?.value.value ?? 0) > 0)
            let processes = values["container_processes"]?.value.value ?? 0
            #expect(processes >= 1 && (values["container_threads"]?.value.value ?? 0) >= processes)
            #expect(values["container_spec_memory_limit_bytes"]?.value.value == 64 << 20)
            #expect(values["container_cpu_usage_seconds_total"]?.metricType == .counter)
            #expect(values["container_memory_rss"]?.metricType == .gauge)
            #expect(values["container_memory_rss"]?.labelValues == ["measured", id, CRI.busyboxImage, "measured", "default", "metrics"])

            let streamed = try await runtime.streamPodSandboxMetrics(Runtime_V1_StreamPodSandboxMetricsRequest()) { response in
                var all: [Runtime_V1_PodSandboxMetrics] = []
                for try await message in response.messages { all += message.podSandboxMetrics }
                return all
            }
            #expect(streamed.map(\.podSandboxID) == pods.map(\.podSandboxID))
            try await Lifecycle.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }
}
