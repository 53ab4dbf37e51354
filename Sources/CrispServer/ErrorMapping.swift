import CrispCore
public import GRPCCore
public import Logging

extension CrispError.Code {
    /// The one place where library error codes become gRPC status codes.
    var rpcCode: RPCError.Code {
        switch self {
        case .notFound: .notFound
        case .invalidArgument: .invalidArgument
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .deadlineExceeded: .deadlineExceeded
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        case .unimplemented: .unimplemented
        case .permissionDenied: .permissionDenied
        case .internal: .internalError
        }
    }
}

/// Turns whatever a handler threw into the `RPCError` the client sees, and logs the failure with
/// its cause. A client gets `CrispError.message` only, which says what failed and with what
/// input; the cause (an errno, a registry's answer, a library's error text, which may carry
/// credentials or internal paths) goes to crispd's log, never to the client.
public struct ErrorMappingInterceptor: ServerInterceptor {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        do {
            return try await next(request, context)
        } catch {
            let mapped = Self.rpcError(from: error, method: context.descriptor.method)
            let level: Logger.Level = mapped.code == .unimplemented || mapped.code == .notFound ? .debug : .warning
            var metadata: Logger.Metadata = ["method": "\(context.descriptor.method)", "code": "\(mapped.code)",
                                             "error": "\(mapped.message)"]
            if let e = error as? CrispError, let cause = e.cause { metadata["cause"] = "\(cause)" }
            if !(error is CrispError || error is RPCError || error is CancellationError) { metadata["cause"] = "\(error)" }
            logger.log(level: level, "rpc failed", metadata: metadata)
            throw mapped
        }
    }

    /// The longest message a client gets. Messages quote the request's input (ids, names,
    /// paths); a 70 kB id quoted whole made a grpc-message header larger than clients accept, so
    /// the client saw a broken stream instead of NotFound.
    static let maxMessageBytes = 1024

    /// `message` cut to `maxMessageBytes` (on a character boundary), with control characters
    /// escaped so that a quoted NUL or newline cannot forge lines in a client's output.
    static func clientMessage(_ message: String) -> String {
        var out = ""
        var bytes = 0
        for scalar in message.unicodeScalars {
            let piece = scalar.properties.generalCategory == .control ? scalar.escaped(asASCII: true) : String(scalar)
            bytes += piece.utf8.count
            if bytes > maxMessageBytes {
                out += "… (\(message.utf8.count) bytes in all)"
                break
            }
            out += piece
        }
        return out
    }

    static func rpcError(from error: any Error, method: String) -> RPCError {
        switch error {
        case let e as RPCError: return e
        case let e as CrispError: return RPCError(code: e.code.rpcCode, message: clientMessage(e.message))
        case is CancellationError: return RPCError(code: .cancelled, message: "request cancelled")
        default: return RPCError(code: .unknown, message: "\(method) failed unexpectedly; crispd's log has the cause")
        }
    }
}
