public import GRPCCore
public import Logging
import Metrics
import Foundation

/// Counts and times every RPC, and logs its duration at trace level. Metrics go to whatever
/// swift-metrics backend the daemon bootstrapped (Prometheus when enabled, nothing otherwise).
/// Placed outside `ErrorMappingInterceptor`, so the errors it counts are gRPC statuses already.
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
            } else {
                logger.trace("rpc", metadata: ["method": "\(method)", "us": "\(elapsed.components.attoseconds / 1_000_000_000_000 + elapsed.components.seconds * 1_000_000)"])
            }
        }
        do {
            let response = try await next(request, context)
            // An inner interceptor's error reaches this one as a rejected response, not a throw.
            if case .failure(let error) = response.accepted { finish(error) } else { finish(nil) }
            return response
        } catch {
            finish(error as? RPCError ?? RPCError(code: .unknown, message: "\(method) failed"))
            throw error
        }
    }
}
