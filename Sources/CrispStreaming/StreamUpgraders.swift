import CrispCore
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// What every connection of the server shares.
final class StreamingContext: Sendable {
    let tokens: StreamTokens
    let backend: any StreamingBackend
    let logger: Logger
    let idleTimeout: TimeAmount

    init(tokens: StreamTokens, backend: any StreamingBackend, logger: Logger, idleTimeout: TimeAmount) {
        self.tokens = tokens
        self.backend = backend
        self.logger = logger
        self.idleTimeout = idleTimeout
    }

    /// `/exec/TOKEN` (query ignored: the request is the one the token was issued for).
    static func route(_ uri: String) -> (kind: String, token: String)? {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count == 2, ["exec", "attach", "portforward"].contains(parts[0]) else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    func protocols(kind: String, webSocket: Bool) -> [StreamProtocol] {
        switch (kind, webSocket) {
        case ("portforward", false): StreamProtocol.spdyPortForward
        case ("portforward", true): StreamProtocol.webSocketPortForward
        case (_, false): StreamProtocol.spdyRemoteCommand
        case (_, true): StreamProtocol.webSocketRemoteCommand
        }
    }

    /// Why a request cannot be upgraded, as the fallback handler answers it.
    enum Refusal: Error {
        case notFound
        case unknownToken
        case noProtocol(offered: [String], supported: [StreamProtocol])
    }

    func check(_ head: HTTPRequestHead, webSocket: Bool) -> Result<(StreamTarget, StreamProtocol), Refusal> {
        guard let (kind, token) = Self.route(head.uri) else { return .failure(.notFound) }
        guard let target = tokens.peek(token, kind: kind) else { return .failure(.unknownToken) }
        let header = webSocket ? "Sec-WebSocket-Protocol" : "X-Stream-Protocol-Version"
        let offered = head.headers[header]
        let supported = protocols(kind: kind, webSocket: webSocket)
        // A WebSocket client must name a protocol; SPDY clients that name none get the oldest.
        if webSocket && offered.isEmpty { return .failure(.noProtocol(offered: offered, supported: supported)) }
        guard let p = StreamProtocol.negotiate(client: offered, server: supported) else {
            return .failure(.noProtocol(offered: offered, supported: supported))
        }
        return .success((target, p))
    }

    /// Adds the idle timeout and the session handler for the chosen protocol; the token is used
    /// up here, so a URL opens one session at most.
    func makeSession(_ head: HTTPRequestHead, webSocket: Bool) -> (handler: any ChannelHandler, idle: IdleCloser, tunnel: Bool)? {
        guard case .success(let (_, p)) = check(head, webSocket: webSocket),
              let (kind, token) = Self.route(head.uri), let target = tokens.redeem(token, kind: kind) else { return nil }
        let idle = IdleCloser(timeout: idleTimeout, logger: logger)
        switch target {
        case .exec(let r):
            logger.info("exec session", metadata: ["container": "\(r.containerID)", "protocol": "\(p.rawValue)", "tty": "\(r.tty)"])
            return webSocket ? (WebSocketStreamHandler(mode: .remoteCommand(.exec(r)), streamProtocol: p, backend: backend, logger: logger), idle, false)
                : (SPDYConnectionHandler(mode: .remoteCommand(.exec(r)), streamProtocol: p, backend: backend, logger: logger), idle, false)
        case .attach(let r):
            logger.info("attach session", metadata: ["container": "\(r.containerID)", "protocol": "\(p.rawValue)"])
            return webSocket ? (WebSocketStreamHandler(mode: .remoteCommand(.attach(r)), streamProtocol: p, backend: backend, logger: logger), idle, false)
                : (SPDYConnectionHandler(mode: .remoteCommand(.attach(r)), streamProtocol: p, backend: backend, logger: logger), idle, false)
        case .portForward(let r):
            logger.info("port-forward session", metadata: ["pod": "\(r.podID)", "protocol": "\(p.rawValue)"])
            if webSocket && p == .wsSPDYPortForward {
                return (SPDYConnectionHandler(mode: .portForward(r), streamProtocol: .portForward, backend: backend, logger: logger), idle, true)
            }
            if webSocket {
                var ports = r.ports.map(Int.init)
                if ports.isEmpty { ports = Self.queryPorts(head.uri) }
                return (WebSocketStreamHandler(mode: .portForward(r, ports: ports), streamProtocol: p, backend: backend, logger: logger), idle, false)
            }
            return (SPDYConnectionHandler(mode: .portForward(r), streamProtocol: p, backend: backend, logger: logger), idle, false)
        }
    }

    /// `?ports=80,8080` (or repeated `ports=`), as kubectl sends for WebSocket port forwarding.
    static func queryPorts(_ uri: String) -> [Int] {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
        return query.split(separator: "&").flatMap { item -> [Int] in
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == "ports" else { return [] }
            return kv[1].split(separator: ",").compactMap { Int($0) }.filter { (1...65535).contains($0) }
        }
    }
}

/// `Upgrade: SPDY/3.1`, with the sub-protocol chosen from `X-Stream-Protocol-Version`.
final class SPDYUpgrader: HTTPServerProtocolUpgrader {
    let supportedProtocol = "SPDY/3.1"
    let requiredUpgradeHeaders: [String] = []
    let context: StreamingContext

    init(context: StreamingContext) { self.context = context }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        switch context.check(upgradeRequest, webSocket: false) {
        case .success(let (_, p)):
            var headers = initialResponseHeaders
            headers.add(name: "X-Stream-Protocol-Version", value: p.rawValue)
            return channel.eventLoop.makeSucceededFuture(headers)
        case .failure(let refusal):
            // The request goes on to StreamHTTPHandler, which answers it.
            return channel.eventLoop.makeFailedFuture(refusal)
        }
    }

    func upgrade(context ctx: ChannelHandlerContext, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<Void> {
        guard let (handler, idle, _) = context.makeSession(upgradeRequest, webSocket: false) else {
            ctx.close(promise: nil)
            return ctx.eventLoop.makeFailedFuture(StreamingContext.Refusal.unknownToken)
        }
        return ctx.eventLoop.makeCompletedFuture {
            let ops = ctx.pipeline.syncOperations
            try idle.install(in: ops)
            try ops.addHandler(ByteToMessageHandler(SPDYFrameDecoder()))
            try ops.addHandler(SPDYFrameWriter())
            try ops.addHandler(handler)
        }
    }
}

extension StreamingContext {
    /// RFC 6455 through NIOWebSocket; the sub-protocol comes from `Sec-WebSocket-Protocol`.
    func webSocketUpgrader() -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 24, automaticErrorHandling: true,
            shouldUpgrade: { [self] channel, head in
                switch self.check(head, webSocket: true) {
                case .success(let (_, p)):
                    return channel.eventLoop.makeSucceededFuture(HTTPHeaders([("Sec-WebSocket-Protocol", p.rawValue)]))
                case .failure:
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
            },
            upgradePipelineHandler: { [self] channel, head in
                channel.eventLoop.makeCompletedFuture {
                    guard let (handler, idle, tunnel) = self.makeSession(head, webSocket: true) else {
                        throw StreamingContext.Refusal.unknownToken
                    }
                    let ops = channel.pipeline.syncOperations
                    try idle.install(in: ops)
                    if tunnel {
                        try ops.addHandler(WebSocketTunnel(masking: false))
                        try ops.addHandler(ByteToMessageHandler(SPDYFrameDecoder()))
                        try ops.addHandler(SPDYFrameWriter())
                    }
                    try ops.addHandler(handler)
                }
            })
    }
}

/// Closes a streaming connection that has been idle (no byte either way) for `timeout`; the
/// session's handler then sees the close like any other and cleans up.
final class IdleCloser: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    let timeout: TimeAmount
    let logger: Logger

    init(timeout: TimeAmount, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
    }

    func install(in ops: ChannelPipeline.SynchronousOperations) throws {
        try ops.addHandler(IdleStateHandler(allTimeout: timeout))
        try ops.addHandler(self)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is IdleStateHandler.IdleStateEvent else { return context.fireUserInboundEventTriggered(event) }
        logger.info("streaming connection idle for too long; closing it")
        context.close(promise: nil)
    }
}
