public import CrispCore
import Glibc

/// Runs a system call that returns -1 and sets errno on failure, retrying on EINTR, and turns a
/// failure into a `SystemCallError` naming the call and its subject (a path or argument).
@inline(__always)
public func syscallChecked<T: BinaryInteger>(_ call: String, _ subject: @autoclosure () -> String, _ body: () -> T) throws(SystemCallError) -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let e = errno
        if e == EINTR { continue }
        throw SystemCallError(call, subject(), errno: e)
    }
}

extension SystemCallError {
    /// Whether the failure is "no such file or directory".
    public var isNotFound: Bool { errno == ENOENT }
}
