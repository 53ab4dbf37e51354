import Foundation

/// Runs blocking work (tar extraction, tree copies, mount calls) on a thread of its own, so it
/// never occupies one of the cooperative pool's few threads (two on this machine) for seconds.
func runOnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let thread = Thread {
            c.resume(with: Result { try body() })
        }
        thread.stackSize = 4 << 20  // directory recursion depth comes from untrusted layers
        thread.start()
    }
}
