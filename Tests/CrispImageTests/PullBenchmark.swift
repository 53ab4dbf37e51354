import CrispCore
@testable import CrispImage
import CrispStorage
import CrispOS
import CrispTestSupport
import Foundation
import Logging
import Testing

/// Not a test: the crisp side of `scripts/bench-images.sh`, which sets CRISP_BENCH_IMAGE
/// (a reference on a loopback registry it started) and reads the `BENCH` line printed here.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["CRISP_BENCH_IMAGE"] != nil, "run by scripts/bench-images.sh"))
struct PullBenchmark {
    @Test func pullIntoEmptyStore() async throws {
        let env = ProcessInfo.processInfo.environment
        let ref = try ImageReference(parsing: env["CRISP_BENCH_IMAGE"]!)
        let tmp = try TempDirectory("crisp-bench")
        defer { tmp.remove() }
        let storage = try await Storage.open(StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"),
                                                            driver: env["CRISP_BENCH_DRIVER"] ?? "overlay"),
                                             logger: Logger(label: "bench"))
        let client = RegistryClient(logger: Logger(label: "bench"))
        let puller = ImagePuller(storage: storage, client: client,
                                 settings: PullerSettings(registries: RegistriesConfiguration(registries: [.init(prefix: ref.registry, insecure: true)]),
                                                          maxParallelDownloads: Int(env["CRISP_BENCH_PARALLEL"] ?? "3") ?? 3,
                                                          temporaryDirectory: tmp.sub("downloads")),
                                 logger: Logger(label: "bench"))
        let start = ContinuousClock.now
        let image = try await puller.pull(ref)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let status = readSmallFile("/proc/self/status") ?? ""
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }.map { String($0.dropFirst(6)).trimmingCharacters(in: .whitespaces) } ?? "?"
        print("BENCH seconds=\(seconds) bytes=\(image.size) peak_rss=\(hwm)")
        try? await client.shutdown()
        await storage.close()
    }
}
