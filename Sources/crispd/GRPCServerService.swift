import CrispOS
import CrispService
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import ServiceLifecycle

/// Runs the gRPC server under swift-service-lifecycle: on SIGTERM/SIGINT it stops accepting new
/// RPCs and lets in-flight ones finish; the service group bounds how long that may take.
struct GRPCServerService: Service, CustomStringConvertible {
    var description: String { "GRPCServerService" }

    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let socketPath: String
    let logger: Logger
    /// Event streams never end by themselves; shutdown ends them so in-flight RPCs can finish.
    var events: EventHub? = nil

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                // Only once bound can the socket's mode be fixed and readiness be announced.
                if let address = try await server.listeningAddress {
                    try SocketPreparation.restrict(path: socketPath)
                    logger.info("serving CRI", metadata: ["address": "\(address)"])
                    // Type=notify: systemd starts the units ordered after crispd (the kubelet) now.
                    SystemdNotify.send("READY=1\nSTATUS=serving CRI on \(socketPath)")
                }
            }
        } onGracefulShutdown: {
            logger.info("shutting down: no new RPCs, finishing in-flight ones")
            SystemdNotify.send("STOPPING=1")
            server.beginGracefulShutdown()
            events?.close()
        }
        SocketPreparation.remove(path: socketPath)
    }
}
