public import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOHTTP2

/// The HTTP/2 server transport crispd serves the CRI on: a unix socket, plaintext, with crisp's
/// own connection policy (`ConnectionPolicyHandler`) in every accepted connection's pipeline.
///
/// Why not the transport's defaults: grpc-go clients (the kubelet, crictl, critest) send a PING
/// with each connection WINDOW_UPDATE (their bandwidth estimator). The transport's keepalive
/// enforcement counted those as abuse and answered with GOAWAY ENHANCE_YOUR_CALM carrying
/// LastStreamID 0, which tells grpc-go that none of its in-flight RPCs was processed: it then
/// re-sent every one of them on a new connection, and non-idempotent RPCs ran twice.
public enum CRIServerTransport {
    public struct Options: Sendable {
        public var socketPath: String
        public var maxRequestPayloadSize: Int
        public var policy: ConnectionPolicy

        public init(socketPath: String, maxRequestPayloadSize: Int, policy: ConnectionPolicy = .init()) {
            self.socketPath = socketPath
            self.maxRequestPayloadSize = maxRequestPayloadSize
            self.policy = policy
        }
    }

    public static func make(_ options: Options) -> HTTP2ServerTransport.Posix {
        let policy = options.policy
        return HTTP2ServerTransport.Posix(
            address: .unixDomainSocket(path: options.socketPath),
            transportSecurity: .plaintext,
            config: .defaults { c in
                c.rpc.maxRequestPayloadSize = options.maxRequestPayloadSize
                // The transport's own ping policing is switched off (every ping is acceptable to
                // it); ConnectionPolicyHandler polices pings the way grpc-go's server does.
                c.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .zero,
                                                              allowWithoutCalls: true)
                c.channelDebuggingCallbacks.onAcceptTCPConnection = { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try ConnectionPolicyHandler.install(in: channel, policy: policy)
                    }
                }
                c.channelDebuggingCallbacks.onAcceptHTTP2Stream = { stream in
                    stream.eventLoop.makeCompletedFuture {
                        ConnectionPolicyHandler.register(stream: stream)
                    }
                }
            })
    }
}
