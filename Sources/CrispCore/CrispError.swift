/// The one error type libraries throw. `code` says what kind of failure it is (the edge maps it
/// to a gRPC status once); `message` says what failed and with what input, for a person.
public struct CrispError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case notFound
        case invalidArgument
        case alreadyExists
        case failedPrecondition
        case deadlineExceeded
        case resourceExhausted
        case unavailable
        case unimplemented
        case permissionDenied
        case `internal`
    }

    public var code: Code
    public var message: String
    /// The underlying error, for crispd's log only: clients see `message` (the edge logs the cause
    /// and never sends it), so a cause may name paths, errnos or a registry's answer freely.
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }

    public static func notFound(_ m: String) -> CrispError { CrispError(.notFound, m) }
    public static func invalidArgument(_ m: String) -> CrispError { CrispError(.invalidArgument, m) }
    public static func alreadyExists(_ m: String) -> CrispError { CrispError(.alreadyExists, m) }
    public static func failedPrecondition(_ m: String) -> CrispError { CrispError(.failedPrecondition, m) }
    public static func `internal`(_ m: String, cause: (any Error & Sendable)? = nil) -> CrispError {
        CrispError(.internal, m, cause: cause)
    }
}

/// A failed system call, with the call's name and the path or argument it was given.
public struct SystemCallError: Error, Sendable, CustomStringConvertible, Equatable {
    public var call: String
    public var subject: String
    public var errno: Int32

    public init(_ call: String, _ subject: String, errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        "\(call)(\(subject)): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension CrispError {
    /// `error` itself when it is a `CrispError`; otherwise an internal error saying that `what`
    /// failed, with `error` as its cause (logged, not sent).
    public init(_ error: any Error, failing what: String) {
        if let e = error as? CrispError { self = e } else { self.init(.internal, "\(what) failed", cause: error) }
    }
}

/// Runs `body`, whose callee throws untyped errors, under crisp's typed throws.
public func typedThrows<T>(_ what: @autoclosure () -> String, _ body: () async throws -> T) async throws(CrispError) -> T {
    do { return try await body() } catch { throw CrispError(error, failing: what()) }
}
