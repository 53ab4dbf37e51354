public import CrispCore
import Foundation
import Synchronization


/// One pull's progress and its watchers. Every pull has one; pulls of the same reference share
/// the pull and so the hub (a CRI PullImage and a `crispctl pull` of one image see the same
/// download). The pipeline finds it through a task-local, so no signature of the pull changes
/// for it; a watcher that joins late gets the current state at once.
public final class PullProgressHub: Sendable {
    @TaskLocal static var current: PullProgressHub?

    private struct State {
        var progress = PullProgress()
        var index: [CrispCore.Digest: Int] = [:]
        var watchers: [UInt64: @Sendable (PullProgress) -> Void] = [:]
        var next: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// `watcher` is called with the whole state now and after every change (from the pull's
    /// tasks, under the hub's lock: keep it short, such as yielding to a stream that keeps the
    /// newest). Returns the token for `unwatch`.
    func watch(_ watcher: @escaping @Sendable (PullProgress) -> Void) -> UInt64 {
        state.withLock { s in
            s.next += 1
            s.watchers[s.next] = watcher
            watcher(s.progress)
            return s.next
        }
    }

    func unwatch(_ token: UInt64) {
        _ = state.withLock { $0.watchers.removeValue(forKey: token) }
    }

    /// Watchers are called under the lock, so each sees the states in order (a late joiner's
    /// first state can never arrive after a newer one); they must not call back into the hub.
    private func update(_ change: (inout State) -> Bool) {
        state.withLock { s in
            guard change(&s) else { return }
            for w in s.watchers.values { w(s.progress) }
        }
    }

    /// The manifest's layers; `stored` ones are already there.
    func planned(_ layers: [(digest: CrispCore.Digest, size: Int64)], stored: Set<CrispCore.Digest>) {
        update { s in
            s.progress.layers = layers.map { .init(digest: $0.digest, size: $0.size, received: 0, state: stored.contains($0.digest) ? .exists : .waiting) }
            s.index = Dictionary(layers.enumerated().map { ($1.digest, $0) }, uniquingKeysWith: { a, _ in a })
            return true
        }
    }

    func received(_ digest: CrispCore.Digest, bytes: Int) {
        update { s in
            guard let i = s.index[digest] else { return false }
            s.progress.layers[i].received += Int64(bytes)
            s.progress.layers[i].state = .downloading
            return true
        }
    }

    /// A download that starts over (a resume the server ignored) counts from zero again.
    func restarted(_ digest: CrispCore.Digest) {
        update { s in
            guard let i = s.index[digest] else { return false }
            s.progress.layers[i].received = 0
            return true
        }
    }

    func finished(_ digest: CrispCore.Digest) {
        update { s in
            guard let i = s.index[digest] else { return false }
            if s.progress.layers[i].state != .exists {
                s.progress.layers[i].state = .done
                s.progress.layers[i].received = max(s.progress.layers[i].received, s.progress.layers[i].size)
            }
            return true
        }
    }
}
