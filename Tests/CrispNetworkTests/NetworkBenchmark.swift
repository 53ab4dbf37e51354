import CrispCore
import CrispNetwork
import Foundation
import Testing

/// Used by scripts/bench-network.sh, not by `make test`: runs CNI ADD+DEL for one pod through
/// PodNetworkManager (netns via crisp-pinns, bridge + portmap, result cache) CRISP_BENCH_N times
/// and writes the per-iteration milliseconds to CRISP_BENCH_OUT.
@Suite(.enabled(if: RootNetworking.available && ProcessInfo.processInfo.environment["CRISP_BENCH_OUT"] != nil,
                "only run by scripts/bench-network.sh"))
struct NetworkBenchmark {
    @Test func addDelThroughCrisp() async throws {
        let env = ProcessInfo.processInfo.environment
        let out = try #require(env["CRISP_BENCH_OUT"])
        let n = Int(env["CRISP_BENCH_N"] ?? "") ?? 20
        try await withFixture(250) { f in
            try f.writeConflist(extraPlugins: [#"{"type":"portmap","capabilities":{"portMappings":true},"snat":true}"#])
            let m = f.manager()
            var samples: [Double] = []
            for i in 0..<(n + 2) {
                let p = pod(name: "bench\(i)")
                f.track(pod: p.id)
                let start = ContinuousClock.now
                _ = try await m.setUp(PodNetworkRequest(pod: p, portMappings: [PortMapping(hostPort: 30250, containerPort: 80)]))
                try await m.tearDown(podID: p.id)
                let d = ContinuousClock.now - start
                if i >= 2 { samples.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
            }
            try samples.map { String(format: "%.3f", $0) }.joined(separator: "\n").write(toFile: out, atomically: true, encoding: .utf8)
            #expect(samples.count == n)
            #expect(f.allocatedIPs().isEmpty)
        }
    }
}
