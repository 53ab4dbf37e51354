import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Answers every request that was not upgraded: a wrong path or token, a missing Upgrade, or no
/// sub-protocol in common (403 with both lists, as the kubelet's server does).
final class StreamHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let context: StreamingContext
    private var head: HTTPRequestHead?

    init(context: StreamingContext) { self.context = context }

    func channelRead(context ctx: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let (status, body) = answer(head)
            var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", String(body.utf8.count)),
                                       ("Connection", "close")])
            if status == .badRequest { headers.add(name: "Upgrade", value: "SPDY/3.1, websocket") }
            ctx.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            ctx.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            ctx.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in ctx.close(promise: nil) }
        }
    }

    func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String) {
        let upgrade = head.headers["Upgrade"].joined(separator: ",").lowercased()
        let webSocket = upgrade.contains("websocket")
        switch context.check(head, webSocket: webSocket) {
        case .failure(.notFound):
            return (.notFound, "no streaming endpoint at \(head.uri.split(separator: "?").first ?? "")\n")
        case .failure(.unknownToken):
            return (.notFound, "unknown, expired or already used streaming token: ask the runtime for a new URL\n")
        case .failure(.noProtocol(let offered, let supported)):
            return (.forbidden, "unable to upgrade: unable to negotiate protocol: client supports \(offered), server supports \(supported.map(\.rawValue))\n")
        case .success:
            if upgrade.isEmpty {
                return (.badRequest, "streaming needs an HTTP upgrade to SPDY/3.1 or websocket\n")
            }
            return (.badRequest, "cannot upgrade to \(head.headers["Upgrade"].joined(separator: ", ")): SPDY/3.1 and websocket are supported\n")
        }
    }

    /// The upgrade handler reports why it did not upgrade; this handler answers the request itself.
    func errorCaught(context ctx: ChannelHandlerContext, error: any Error) {
        if error is StreamingContext.Refusal { return }
        if error is NIOWebSocketUpgradeError { return }
        ctx.fireErrorCaught(error)
    }
}

