/// Runs `body` against a deadline: its answer, or false when `within` passes first (then `body`
/// is cancelled). For tests that wait on an event, never on a fixed sleep.
public func answer(within: Duration, _ body: @escaping @Sendable () async -> Bool) async -> Bool {
    await withTaskGroup(of: Bool.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: within)
            return false
        }
        let first = await group.next() ?? false
        group.cancelAll()
        return first
    }
}
