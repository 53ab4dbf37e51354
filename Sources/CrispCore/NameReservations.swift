/// Names (a pod's metadata key, a container's name in its pod) reserved for the id that holds
/// them, as CRI-O's name index does. A name is reserved *before* the first suspension of the
/// operation that creates it, and stays reserved while that creation is in flight: a twin
/// request (a client that replayed the RPC) waits for the first to finish and then answers
/// AlreadyExists, or creates it after all if the first failed and gave the name back.
///
/// A value type owned by an actor; the actor calls `reserve` in a loop (see `Claim.wait`).
public struct NameReservations: Sendable {
    private var owners: [String: String] = [:]
    private var inFlight: [String: [CheckedContinuation<Void, Never>]] = [:]

    public init() {}

    public enum Claim: Sendable {
        /// The name is now reserved for the given id, in flight until `finish`.
        case reserved
        /// Another finished object holds the name.
        case taken(by: String)
        /// Another creation of the same name is in flight: wait with `enqueue`, then try again.
        case wait
    }

    public func owner(of name: String) -> String? { owners[name] }

    public mutating func reserve(_ name: String, for id: String) -> Claim {
        if let owner = owners[name] { return inFlight[name] != nil ? .wait : .taken(by: owner) }
        owners[name] = id
        inFlight[name] = []
        return .reserved
    }

    /// Parks a twin until the creation in flight finishes.
    public mutating func enqueue(_ name: String, _ waiter: CheckedContinuation<Void, Never>) {
        if inFlight[name] != nil { inFlight[name]!.append(waiter) } else { waiter.resume() }
    }

    /// The creation ended: `keep` leaves the name with its object, otherwise it is given back.
    /// Waiting twins are woken to look again.
    public mutating func finish(_ name: String, keep: Bool) {
        if !keep { owners[name] = nil }
        for w in inFlight.removeValue(forKey: name) ?? [] { w.resume() }
    }

    /// The object was removed (or restored at start-up with `restore`).
    public mutating func release(_ name: String) {
        guard inFlight[name] == nil else { return }
        owners[name] = nil
    }

    public mutating func restore(_ name: String, for id: String) { owners[name] = id }
}
