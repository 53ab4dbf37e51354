public import CrispCore
import Synchronization

/// Unique MCS levels (`s0:cX,cY`, X < Y) for pods on an SELinux host, held while the pod lives.
/// Two categories from 1024 give 523,776 levels, the scheme container-selinux expects.
/// A lock, not an actor: reserving is a few set operations and callers are in the middle of
/// other work they must not suspend.
public final class MCSAllocator: Sendable {
    private let taken = Mutex<Set<String>>([])
    private let categories: Int

    public init(categories: Int = 1024) { self.categories = categories }

    /// A level no live pod has.
    /// - Throws: `resourceExhausted` when every pair is in use.
    public func reserve<G: RandomNumberGenerator>(using generator: inout G) throws(CrispError) -> String {
        let pairs = categories * (categories - 1) / 2
        let level: String? = taken.withLock { set in
            guard set.count < pairs else { return nil }
            while true {
                let a = Int.random(in: 0..<categories, using: &generator)
                let b = Int.random(in: 0..<categories, using: &generator)
                guard a != b else { continue }
                let l = "s0:c\(min(a, b)),c\(max(a, b))"
                if set.insert(l).inserted { return l }
            }
        }
        guard let level else { throw CrispError(.resourceExhausted, "every SELinux MCS level is in use by a pod") }
        return level
    }

    public func reserve() throws(CrispError) -> String {
        var g = SystemRandomNumberGenerator()
        return try reserve(using: &g)
    }

    /// Takes a level a pod already had (restore at start-up, or a level the pod asked for).
    /// - Returns: false when another pod holds it.
    @discardableResult
    public func claim(_ level: String) -> Bool { taken.withLock { $0.insert(level).inserted } }

    public func release(_ level: String) { _ = taken.withLock { $0.remove(level) } }
}
