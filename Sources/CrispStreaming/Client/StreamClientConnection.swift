public import CrispCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// The wire protocol a client upgrades to.
public enum StreamTransportKind: String, Sendable, CaseIterable {
    case spdy
    case webSocket = "websocket"
}

/// What a client sees of a streaming connection, as events in arrival order.
/// Takes a remote command's output where it arrives, on the connection's event loop, in place
/// of `.stdout`/`.stderr` events: a client that only writes the bytes out (crispctl) then copies
/// them once and hops no thread per chunk. Blocking in it holds the connection back, which is
/// the backpressure such a client wants.
public typealias StreamOutputSink = @Sendable (_ isStderr: Bool, _ bytes: UnsafeRawBufferPointer) -> Void

public enum StreamClientEvent: Sendable, Equatable {
    case stdout([UInt8])
    case stderr([UInt8])
    /// The error stream's whole content, once the server closed it.
    case status(String)
    /// Port forwarding: data from the pod, or the port's error text.
    case portData(port: Int, [UInt8])
    case portError(port: Int, String)
    case portClosed(port: Int)
    case closed
}

/// Why a connection was not upgraded: the server's status and body.
public struct StreamRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var body: String
    public var description: String { "HTTP \(status): \(body)" }
}

/// Opens the HTTP connection behind a streaming URL and upgrades it; crispctl and the tests use
/// it. It shares only the frame codec with the server; stream set-up and channel handling are
/// written from the client's side of the protocols.
enum StreamClientConnection {
    static let group = MultiThreadedEventLoopGroup.singleton

    struct Target {
        var host: String
        var port: Int
        var path: String
        var https = false
    }

    /// IP literals (what crispd hands out) need no resolver; names go through getaddrinfo.
    static func address(_ t: Target) throws -> SocketAddress {
        if let a = try? SocketAddress(ipAddress: t.host, port: t.port) { return a }
        return try SocketAddress.makeAddressResolvingHost(t.host, port: t.port)
    }

    static func parse(_ url: String) throws(CrispError) -> Target {
        guard url.hasPrefix("http://") || url.hasPrefix("https://"),
              let rest = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first
        else { throw .invalidArgument("streaming URL \(url) is not http(s)://HOST:PORT/PATH") }
        let hostPort = String(rest)
        let path = "/" + (url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(3).first.map(String.init) ?? "")
        let host: String, port: Int
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            port = Int(hostPort[hostPort.index(close, offsetBy: 2)...]) ?? (url.hasPrefix("https://") ? 443 : 80)
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            port = Int(hostPort[hostPort.index(after: colon)...]) ?? (url.hasPrefix("https://") ? 443 : 80)
        } else {
            host = hostPort
            port = url.hasPrefix("https://") ? 443 : 80
        }
        return Target(host: host, port: port, path: path, https: url.hasPrefix("https://"))
    }

    /// Connects, sends the upgrade request, and once the server switched protocols installs
    /// `makeHandler`'s handler. Throws `StreamRefusal` when the server answered with an error.
    static func open(url: String, transport: StreamTransportKind, protocols: [String], tls: StreamClientTLS? = nil,
                     makeHandler: @escaping @Sendable (any Channel, String) throws -> Void) async throws -> any Channel {
        let target = try parse(url)
        let sslContext = target.https ? try (tls ?? StreamClientTLS()).context() : nil
        let upgraded = group.next().makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: StreamBuffers.receive)
            .channelOption(.writeBufferWaterMark, value: StreamBuffers.waterMark)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: nil))
                    }
                    let done: @Sendable (ChannelHandlerContext) -> Void = { ctx in
                        if let r = try? ctx.pipeline.syncOperations.handler(type: RefusalCatcher.self) {
                            // The server switched protocols: a close from now on is the session's end.
                            r.upgrading = true
                            ctx.pipeline.syncOperations.removeHandler(r, promise: nil)
                        }
                    }
                    let upgrader: any NIOHTTPClientProtocolUpgrader
                    switch transport {
                    case .spdy:
                        upgrader = SPDYClientUpgrader(protocols: protocols) { ch, chosen in
                            try makeHandler(ch, chosen)
                            upgraded.succeed()
                        }
                    case .webSocket:
                        upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24, automaticErrorHandling: true) { ch, response in
                            ch.eventLoop.makeCompletedFuture {
                                let ops = ch.pipeline.syncOperations
                                try ops.addHandler(WebSocketFrameWriter(), position: .before(try ops.handler(type: WebSocketFrameEncoder.self)))
                                try makeHandler(ch, response.headers["Sec-WebSocket-Protocol"].first ?? "")
                                upgraded.succeed()
                            }
                        }
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes, withClientUpgrade: (upgraders: [upgrader], completionHandler: done))
                    try channel.pipeline.syncOperations.addHandler(RefusalCatcher(promise: upgraded))
                }
            }
            .connect(to: address(target)).get()
        var headers = HTTPHeaders([("Host", "\(target.host):\(target.port)"), ("Content-Length", "0")])
        switch transport {
        case .spdy: break
        case .webSocket: headers.add(name: "Sec-WebSocket-Protocol", value: protocols.joined(separator: ", "))
        }
        let head = HTTPRequestHead(version: .http1_1, method: transport == .spdy ? .POST : .GET, uri: target.path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        do {
            try await upgraded.futureResult.get()
        } catch {
            try? await channel.close()
            throw error
        }
        return channel
    }
}

/// Collects a non-101 answer and fails the upgrade with it.
final class RefusalCatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Void>
    private var status = 0
    private var body = ""
    var upgrading = false

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): status = Int(h.status.code)
        case .body(let b): body += String(buffer: b)
        case .end:
            promise.fail(StreamRefusal(status: status, body: body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let refusal = StreamRefusal(status: status, body: body.isEmpty ? "connection closed before the upgrade" : body)
        if status == 0 && !upgrading {
            // The 101 may be in the upgrade handler, which finishes the upgrade over a few more
            // loop ticks while this close passes through: give the upgrade the chance to win.
            let promise = self.promise
            context.eventLoop.scheduleTask(in: .seconds(1)) { promise.fail(refusal) }
        } else if !upgrading {
            promise.fail(refusal)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

/// `Upgrade: SPDY/3.1` from the client's side, offering `protocols` in order.
final class SPDYClientUpgrader: NIOHTTPClientProtocolUpgrader {
    let supportedProtocol = "SPDY/3.1"
    let requiredUpgradeHeaders: [String] = []
    let protocols: [String]
    let install: (any Channel, String) throws -> Void

    init(protocols: [String], install: @escaping (any Channel, String) throws -> Void) {
        self.protocols = protocols
        self.install = install
    }

    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {
        for p in protocols { upgradeRequestHeaders.add(name: "X-Stream-Protocol-Version", value: p) }
    }

    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool {
        protocols.contains(upgradeResponse.headers["X-Stream-Protocol-Version"].first ?? "")
    }

    func upgrade(context: ChannelHandlerContext, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<Void> {
        context.eventLoop.makeCompletedFuture {
            try context.pipeline.syncOperations.addHandler(ByteToMessageHandler(SPDYFrameDecoder()))
            try context.pipeline.syncOperations.addHandler(SPDYFrameWriter())
            try install(context.channel, upgradeResponse.headers["X-Stream-Protocol-Version"].first ?? "")
        }
    }
}
