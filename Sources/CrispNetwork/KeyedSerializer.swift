/// Serializes work per key (one pod's setUp/tearDown) while different keys run in parallel.
/// Ownership is handed straight to the next waiter on release, so there is no thundering herd.
actor KeyedSerializer {
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func acquire(_ key: String) async {
        if !held.contains(key) {
            held.insert(key)
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    func release(_ key: String) {
        if var w = waiters[key], !w.isEmpty {
            let next = w.removeFirst()
            waiters[key] = w.isEmpty ? nil : w
            next.resume()  // the key stays held, now by the waiter
        } else {
            held.remove(key)
        }
    }
}
