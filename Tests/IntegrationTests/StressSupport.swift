import IntegrationSupport
import CrispOS
import Foundation
import Synchronization

/// The two sizes of the reliability scenarios (issue 16): `make test` runs the quick one,
/// `make stress` (CRISP_STRESS=full) the full one.
enum StressSize {
    static var full: Bool { ProcessInfo.processInfo.environment["CRISP_STRESS"] == "full" }
    static func pick(quick: Int, full: Int) -> Int { Self.full ? full : quick }
}

/// What a scenario's workload found, and how often it did something.
final class StressFindings: Sendable {
    private let problems = Mutex<[String]>([])
    private struct Waiter {
        let id: UUID
        let target: Int
        let continuation: CheckedContinuation<Void, Never>
    }
    private let operations = Mutex<(count: Int, waiters: [Waiter])>((0, []))
    func add(_ p: String) { problems.withLock { $0.append(p) } }
    func count(_ n: Int = 1) {
        let ready = operations.withLock { o in
            o.count += n
            let count = o.count
            let ready = o.waiters.filter { $0.target <= count }
            o.waiters.removeAll { $0.target <= count }
            return ready
        }
        for w in ready { w.continuation.resume() }
    }
    var all: [String] { problems.withLock { $0 } }
    var operationCount: Int { operations.withLock { $0.count } }

    /// Returns once `n` operations have been counted in all, or when the task is cancelled.
    func reach(_ n: Int) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = operations.withLock { o in
                    if o.count >= n || Task.isCancelled { return true }
                    o.waiters.append(Waiter(id: id, target: n, continuation: c))
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let waiter = operations.withLock { o -> Waiter? in
                guard let i = o.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return o.waiters.remove(at: i)
            }
            waiter?.continuation.resume()
        }
    }
}

/// Client-side durations per RPC, for the p50/p99 lines the load scenarios print.
final class RPCTimings: Sendable {
    private let samples = Mutex<[String: [Duration]]>([:])

    func time<R>(_ rpc: String, _ body: () async throws -> R) async rethrows -> R {
        let start = ContinuousClock.now
        let r = try await body()
        let d = ContinuousClock.now - start
        samples.withLock { $0[rpc, default: []].append(d) }
        return r
    }

    var count: Int { samples.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// One line per RPC: count, p50 and p99 in milliseconds.
    func table() -> String {
        let all = samples.withLock { $0 }
        return all.keys.sorted().map { rpc in
            let ms = all[rpc]!.map { Double($0.components.attoseconds) / 1e15 + Double($0.components.seconds) * 1000 }.sorted()
            func q(_ p: Double) -> Double { ms[min(ms.count - 1, Int((Double(ms.count) * p).rounded(.up)) - 1)] }
            return String(format: "    %-22@ n=%4d  p50 %8.1f ms  p99 %8.1f ms", rpc as NSString, ms.count, q(0.5), q(0.99))
        }.joined(separator: "\n")
    }
}

/// A process's resident memory, open descriptors and threads, read from /proc.
struct ProcessSample: CustomStringConvertible {
    let rssKB: Int
    let fds: Int
    let threads: Int

    init?(pid: Int32) {
        guard let status = readSmallFile("/proc/\(pid)/status") else { return nil }
        func field(_ name: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
            let words = line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" })
            return words.first.flatMap { Int($0) }
        }
        guard let rss = field("VmRSS"), let threads = field("Threads") else { return nil }
        rssKB = rss
        self.threads = threads
        fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    var description: String { String(format: "%.1f MB/%d fds/%d threads", Double(rssKB) / 1024, fds, threads) }
}
