public import CrispCore
public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The HTTP server behind the URLs that Exec, Attach and PortForward return. The kubelet (or
/// crictl) connects, upgrades to SPDY/3.1 or WebSocket, and the session runs on the connection's
/// event loop against `StreamingBackend`.
public final class StreamingServer: Sendable {
    public struct Options: Sendable {
        public var address: String
        /// 0 picks a free port.
        public var port: Int
        public var idleTimeout: Duration
        public var tokenLifetime: Duration
        /// HTTPS when set.
        public var tls: StreamTLSOptions?

        public init(address: String = "127.0.0.1", port: Int = 0, idleTimeout: Duration = .seconds(4 * 3600),
                    tokenLifetime: Duration = .seconds(60), tls: StreamTLSOptions? = nil) {
            self.address = address
            self.port = port
            self.idleTimeout = idleTimeout
            self.tokenLifetime = tokenLifetime
            self.tls = tls
        }
    }

    public let tokens: StreamTokens
    private let context: StreamingContext
    private let options: Options
    private let group: MultiThreadedEventLoopGroup
    private let state = Mutex<(channel: (any Channel)?, connections: [ObjectIdentifier: any Channel], base: String)>((nil, [:], ""))

    public init(options: Options, backend: any StreamingBackend, logger: Logger, threads: Int = 1) {
        self.options = options
        tokens = StreamTokens(lifetime: options.tokenLifetime)
        let (s, a) = options.idleTimeout.components
        let idle = TimeAmount.nanoseconds(s * 1_000_000_000 + a / 1_000_000_000)
        context = StreamingContext(tokens: tokens, backend: backend, logger: logger, idleTimeout: idle)
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    }

    /// Binds and starts accepting; returns the base URL (`http://ADDR:PORT`).
    @discardableResult
    public func start() async throws(CrispError) -> String {
        let context = self.context
        let tls = try options.tls.map { (o) throws(CrispError) in try StreamTLSContexts(o) }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: StreamBuffers.receive)
            .childChannelOption(.writeBufferWaterMark, value: StreamBuffers.waterMark)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: try tls.current())) }
                    let fallback = StreamHTTPHandler(context: context)
                    let upgrade: NIOHTTPServerUpgradeConfiguration = (
                        upgraders: [SPDYUpgrader(context: context), context.webSocketUpgrader()],
                        completionHandler: { ctx in
                            if let fb = try? ctx.pipeline.syncOperations.context(handlerType: StreamHTTPHandler.self) {
                                ctx.pipeline.syncOperations.removeHandler(context: fb, promise: nil)
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: upgrade)
                    try channel.pipeline.syncOperations.addHandler(fallback)
                    self?.track(channel)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: options.address, port: options.port).get()
        } catch {
            throw CrispError(.failedPrecondition, "the streaming server cannot listen on \(options.address):\(options.port): \(error)")
        }
        let port = channel.localAddress?.port ?? options.port
        let host = options.address.contains(":") ? "[\(options.address)]" : options.address
        let base = "\(tls == nil ? "http" : "https")://\(host):\(port)"
        state.withLock {
            $0.channel = channel
            $0.base = base
        }
        return base
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.connections[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in _ = self?.state.withLock { $0.connections.removeValue(forKey: id) } }
    }

    public var baseURL: String { state.withLock { $0.base } }

    /// A single-use URL for `target`.
    public func url(for target: StreamTarget, lifetime: Duration? = nil) -> String {
        "\(baseURL)/\(target.path)/\(tokens.issue(target, lifetime: lifetime))"
    }

    /// Open streaming connections (for Status and tests).
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Stops listening and closes every session (their commands are killed, descriptors closed).
    public func stop() async {
        let (listener, connections) = state.withLock { s in
            let out = (s.channel, Array(s.connections.values))
            s.channel = nil
            return out
        }
        try? await listener?.close()
        for c in connections { try? await c.close() }
        try? await group.shutdownGracefully()
    }
}
