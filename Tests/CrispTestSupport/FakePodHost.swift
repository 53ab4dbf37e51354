public import CrispCore
public import CrispNetwork
public import CrispService
import Synchronization

/// A `PodHost` that mounts nothing and pins nothing: it remembers what a pod was given, and
/// can be told to fail a step. For pod service tests without root.
public final class FakePodHost: PodHost {
    public enum Step: Sendable, Hashable { case mountShm, pin, pinUser }

    struct State {
        var shm: Set<String> = []
        var pins: [String: Set<PinnsNamespaces.Kind>] = [:]
        var failures: [Step: CrispError] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The /dev/shm paths mounted now.
    public var mountedShm: Set<String> { state.withLock { $0.shm } }
    /// The pinned namespaces now, by pin name.
    public var pins: [String: Set<PinnsNamespaces.Kind>] { state.withLock { $0.pins } }

    public func fail(_ step: Step, with error: CrispError?) { state.withLock { $0.failures[step] = error } }

    private func check(_ step: Step) throws(CrispError) {
        if let e = state.withLock({ $0.failures[step] }) { throw e }
    }

    public func mountShm(at path: String) throws(CrispError) {
        try check(.mountShm)
        state.withLock { _ = $0.shm.insert(path) }
    }

    public func unmountShm(at path: String) throws(CrispError) {
        state.withLock { _ = $0.shm.remove(path) }
    }

    public var canPinNamespaces: Bool { true }

    public func pinNamespaces(name: String, kinds: Set<PinnsNamespaces.Kind>, hostname: String?,
                              userNamespace: String?) async throws(CrispError) -> [PinnsNamespaces.Kind: String] {
        try check(.pin)
        state.withLock { $0.pins[name, default: []].formUnion(kinds) }
        return Dictionary(uniqueKeysWithValues: kinds.map { ($0, "/fake/\($0.rawValue)ns/\(name)") })
    }

    public func pinUserNamespace(name: String, uidMap: String, gidMap: String) async throws(CrispError) -> String {
        try check(.pinUser)
        state.withLock { $0.pins[name, default: []].insert(.user) }
        return "/fake/userns/\(name)"
    }

    public func unpinNamespaces(name: String, kinds: Set<PinnsNamespaces.Kind>) async throws(CrispError) {
        state.withLock { s in
            s.pins[name]?.subtract(kinds)
            if s.pins[name]?.isEmpty == true { s.pins[name] = nil }
        }
    }

    public func isPinnedNamespace(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? ""
        return state.withLock { $0.pins[name] != nil }
    }
}
