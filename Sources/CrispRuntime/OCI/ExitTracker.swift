import Foundation

/// Remembers container exits and lets callers wait for one, e.g. StopContainer waiting out the
/// grace period. Fed by an `ExitWatcher`; a waiter registered after the exit returns at once.
public actor ExitTracker {
    private var exits: [String: ContainerExit] = [:]
    private var waiters: [String: [CheckedContinuation<ContainerExit?, Never>]] = [:]
    private var listeners: [@Sendable (ContainerExit) -> Void] = []

    public init() {}

    /// Consumes the watcher's stream until it ends.
    public func follow(_ watcher: ExitWatcher) async {
        for await exit in watcher.exits { record(exit) }
    }

    /// Called for every exit (the service uses it to update container state and emit events).
    public func onExit(_ listener: @escaping @Sendable (ContainerExit) -> Void) {
        listeners.append(listener)
    }

    public func record(_ exit: ContainerExit) {
        exits[exit.id] = exit
        for w in waiters.removeValue(forKey: exit.id) ?? [] { w.resume(returning: exit) }
        for l in listeners { l(exit) }
    }

    public func exit(of id: String) -> ContainerExit? { exits[id] }

    public func forget(_ id: String) { exits[id] = nil }

    /// Waits until `id` exits or `timeout` passes (nil then).
    public func wait(for id: String, timeout: Duration) async -> ContainerExit? {
        if let e = exits[id] { return e }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { waiters[id, default: []].append($0) }
    }

    private func expire(_ id: String) {
        for w in waiters.removeValue(forKey: id) ?? [] { w.resume(returning: nil) }
    }
}
