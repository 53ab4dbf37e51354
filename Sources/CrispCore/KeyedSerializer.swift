/// Serializes work per key (one pod's or one container's operations) while different keys run
/// in parallel. Ownership is handed straight to the next waiter on release, so there is no
/// thundering herd and waiters are served in arrival order.
public actor KeyedSerializer {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    public init() {}

    public func acquire(_ key: String) async {
        if !held.contains(key) {
            held.insert(key)
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    public func release(_ key: String) {
        if var w = waiters[key], !w.isEmpty {
            let next = w.removeFirst()
            waiters[key] = w.isEmpty ? nil : w
            next.resume()  // the key stays held, now by the waiter
        } else {
            held.remove(key)
        }
    }

    /// Runs `body` while holding `key`; the key is released however `body` ends. `body` runs in
    /// the caller's isolation (an actor's operations stay on that actor).
    public func exclusively<T, E: Error>(
        _ key: String, isolation: isolated (any Actor)? = #isolation, _ body: () async throws(E) -> T
    ) async throws(E) -> T {
        await acquire(key)
        do {
            let result = try await body()
            await release(key)
            return result
        } catch {
            await release(key)
            throw error
        }
    }
}
