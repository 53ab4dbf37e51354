import CrispCore
import GRPCCore

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

/// Turns whatever a handler threw into the `RPCError` the client sees.
func rpcError(from error: any Error) -> RPCError {
    switch error {
    case let e as RPCError: return e
    case let e as CrispError: return RPCError(code: e.code.rpcCode, message: e.description)
    case is CancellationError: return RPCError(code: .cancelled, message: "request cancelled")
    default: return RPCError(code: .unknown, message: "\(error)")
    }
}
