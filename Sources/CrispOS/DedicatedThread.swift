import Foundation

/// Starts `body` on a thread of its own, named `name` (shown by `top -H`, at most 15 bytes).
/// For blocking work — tar apply, tree walks, mounts, process waits, inotify loops — that must not
/// occupy one of the cooperative pool's few threads. `stackSize` matters where recursion depth
/// comes from untrusted input (directory trees of a layer).
public func startThread(name: String, stackSize: Int = 4 << 20, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.stackSize = stackSize
    thread.start()
}

/// Runs blocking `body` on a thread of its own (`startThread`) and returns its result or error.
/// The one "run on a dedicated thread" helper: storage applies and walks, process waits and
/// pipe pumps, `FileAppearance`.
public func runOnThread<T: Sendable, E: Error>(name: String = "crisp-blocking", stackSize: Int = 4 << 20,
                                              _ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result = await withCheckedContinuation { (c: CheckedContinuation<Result<T, E>, Never>) in
        startThread(name: name, stackSize: stackSize) {
            c.resume(returning: Result { () throws(E) -> T in try body() })
        }
    }
    return try result.get()
}
