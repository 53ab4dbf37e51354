import IntegrationSupport
import CRIAPI
import Foundation
import Testing

/// Used by scripts/bench-metrics.sh, not by `make test`: how long ListPodSandboxMetrics (and,
/// for comparison, ListContainerStats) takes with CRISP_BENCH_CONTAINERS running containers in
/// pods of ten, as the kubelet scrapes it every 10 s. One line "name ms ms ..." per measure in
/// CRISP_BENCH_OUT.
@Suite(.enabled(if: isRoot && ProcessInfo.processInfo.environment["CRISP_BENCH_OUT"] != nil,
                "only run by scripts/bench-metrics.sh"))
struct MetricsBenchmark {
    typealias Lifecycle = CRI

    @Test func metricsWithManyContainers() async throws {
        let env = ProcessInfo.processInfo.environment
        let out = try #require(env["CRISP_BENCH_OUT"])
        let containers = Int(env["CRISP_BENCH_CONTAINERS"] ?? "") ?? 100
        let rounds = Int(env["CRISP_BENCH_N"] ?? "") ?? 20
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let lines = try await world.crispd.withClients { runtime, _ -> [String] in
            var lines: [String] = []
            var pods: [String] = []
            for p in 0..<((containers + 9) / 10) {
                let pod = try await Lifecycle.runPod(runtime, "bench-\(p)", world: world)
                pods.append(pod.id)
                for c in 0..<min(10, containers - p * 10) {
                    _ = try await Lifecycle.startContainer(runtime, pod: pod, "c\(c)", ["/bin/sleep", "3600"])
                }
            }
            let clock = ContinuousClock()
            var metrics: [Double] = [], stats: [Double] = []
            var count = 0
            for _ in 0..<(rounds + 2) {
                let m = try await clock.measure {
                    count = try await runtime.listPodSandboxMetrics(Runtime_V1_ListPodSandboxMetricsRequest()).podMetrics
                        .reduce(0) { $0 + $1.containerMetrics.count }
                }
                let s = try await clock.measure { _ = try await runtime.listContainerStats(Runtime_V1_ListContainerStatsRequest()) }
                metrics.append(Double(m.components.attoseconds) / 1e15 + Double(m.components.seconds) * 1000)
                stats.append(Double(s.components.attoseconds) / 1e15 + Double(s.components.seconds) * 1000)
            }
            #expect(count == containers)
            // The first two rounds warm caches (first CPU samples, dentries); they are not counted.
            lines.append("list_pod_sandbox_metrics " + metrics.dropFirst(2).map { String(format: "%.2f", $0) }.joined(separator: " "))
            lines.append("list_container_stats " + stats.dropFirst(2).map { String(format: "%.2f", $0) }.joined(separator: " "))
            lines.append("containers \(count)")
            for id in pods { try await Lifecycle.removePod(runtime, id) }
            return lines
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        world.assertNoLeaks()
    }
}
