import Synchronization

/// Notices worth one log line per daemon, not one per container.
public final class OnceNotices: Sendable {
    private let seen = Mutex<Set<String>>([])
    public init() {}
    /// True the first time `key` is passed.
    public func first(_ key: String) -> Bool { seen.withLock { $0.insert(key).inserted } }
}
