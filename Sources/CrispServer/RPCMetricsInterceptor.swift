public import GRPCCore
public import Logging
import Metrics
import Foundation

/// Counts, times and logs every RPC, and turns library errors into gRPC status codes so that
/// handlers may throw `CrispError` freely. Metrics go to whatever swift-metrics backend the
/// daemon bootstrapped (Prometheus when enabled, nothing otherwise).
public struct RPCMetricsInterceptor: ServerInterceptor {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let method = context.descriptor.method
        let dimensions = [("method", method)]
        Counter(label: "crisp_grpc_requests_total", dimensions: dimensions).increment()
        let start = ContinuousClock.now
        func finish(_ error: RPCError?) {
            let elapsed = ContinuousClock.now - start
            Metrics.Timer(label: "crisp_grpc_request_duration_seconds", dimensions: dimensions,
                          preferredDisplayUnit: .seconds).record(duration: elapsed)
            if let error {
                Counter(label: "crisp_grpc_errors_total", dimensions: dimensions + [("code", "\(error.code)")]).increment()
                let level: Logger.Level = error.code == .unimplemented || error.code == .notFound ? .debug : .warning
                logger.log(level: level, "rpc failed", metadata: [
                    "method": "\(method)", "code": "\(error.code)", "error": "\(error.message)",
                ])
            } else {
                logger.trace("rpc", metadata: ["method": "\(method)", "us": "\(elapsed.components.attoseconds / 1_000_000_000_000 + elapsed.components.seconds * 1_000_000)"])
            }
        }
        do {
            let response = try await next(request, context)
            finish(nil)
            return response
        } catch {
            let mapped = rpcError(from: error)
            finish(mapped)
            throw mapped
        }
    }
}
