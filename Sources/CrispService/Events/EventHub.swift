import Synchronization

/// A lifecycle change of a container or a pod, as GetContainerEvents reports it (the kubelet's
/// evented PLEG). Pod events carry the pod id in both fields.
public struct LifecycleEvent: Sendable, Equatable {
    public enum Kind: String, Sendable { case created, started, stopped, deleted }
    public var kind: Kind
    /// The container's id, or the pod's for pod events.
    public var id: String
    public var sandboxID: String
    public var isSandbox: Bool
    /// Nanoseconds since the epoch.
    public var at: Int64

    public init(kind: Kind, id: String, sandboxID: String, isSandbox: Bool, at: Int64) {
        self.kind = kind
        self.id = id
        self.sandboxID = sandboxID
        self.isSandbox = isSandbox
        self.at = at
    }
}

/// Fans lifecycle events out to every subscriber. `emit` is synchronous and never blocks an
/// actor: each subscriber has its own bounded buffer, and a subscriber that falls that far
/// behind loses the oldest events (counted in `dropped`) rather than holding the daemon up.
public final class EventHub: Sendable {
    private struct State {
        var next: UInt64 = 0
        var subscribers: [UInt64: AsyncStream<LifecycleEvent>.Continuation] = [:]
        var dropped: UInt64 = 0
        var closed = false
    }
    private let state = Mutex(State())
    let bufferSize: Int

    public init(bufferSize: Int = 4096) { self.bufferSize = bufferSize }

    /// A stream of every event emitted from now on; it ends when the consumer stops iterating.
    public func subscribe() -> AsyncStream<LifecycleEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: LifecycleEvent.self,
                                                            bufferingPolicy: .bufferingNewest(bufferSize))
        let key: UInt64? = state.withLock { s in
            if s.closed { return nil }
            s.next += 1
            s.subscribers[s.next] = continuation
            return s.next
        }
        guard let key else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: key) }
        }
        return stream
    }

    public func emit(_ event: LifecycleEvent) {
        let targets = state.withLock { Array($0.subscribers.values) }
        var lost: UInt64 = 0
        for c in targets {
            if case .dropped = c.yield(event) { lost += 1 }
        }
        if lost > 0 { state.withLock { $0.dropped += lost } }
    }

    /// Ends every stream (daemon shutdown); later subscribers get an empty stream.
    public func close() {
        let all = state.withLock { s in
            s.closed = true
            defer { s.subscribers = [:] }
            return Array(s.subscribers.values)
        }
        for c in all { c.finish() }
    }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
    public var dropped: UInt64 { state.withLock { $0.dropped } }
}
