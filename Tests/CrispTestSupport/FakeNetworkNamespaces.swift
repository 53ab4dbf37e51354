public import CrispCore
public import CrispNetwork
import Synchronization

/// A `NetworkNamespaceProvider` for unit tests: "pins" are names in memory, with an optional
/// failure injected for creation.
public final class FakeNetworkNamespaces: NetworkNamespaceProvider {
    private let state = Mutex<(live: Set<String>, failCreate: CrispError?)>(([], nil))

    public init() {}

    public var live: Set<String> { state.withLock { $0.live } }
    public func failNextCreate(_ e: CrispError?) { state.withLock { $0.failCreate = e } }

    public func path(for name: String) -> String { "/fake/netns/" + name }
    public func exists(name: String) -> Bool { state.withLock { $0.live.contains(name) } }

    public func create(name: String, userNamespace: String?) async throws(CrispError) -> String {
        let r: Result<String, CrispError> = state.withLock { s in
            if let e = s.failCreate { s.failCreate = nil; return .failure(e) }
            if s.live.contains(name) { return .failure(.alreadyExists("netns \(name) exists")) }
            s.live.insert(name)
            return .success("/fake/netns/" + name)
        }
        return try r.get()
    }

    public func remove(name: String) async throws(CrispError) {
        _ = state.withLock { $0.live.remove(name) }
    }
}
