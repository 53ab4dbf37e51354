import NIOCore
import NIOWebSocket

/// `SPDY/3.1+portforward.k8s.io`: client-go (kubectl ≥ 1.30, crictl) tunnels the SPDY port-forward
/// protocol through a WebSocket, the SPDY bytes carried as the payloads of binary messages (no
/// channel byte). This turns messages into a byte stream for the SPDY codec above it and each
/// write of the codec into one binary message; pings and the close handshake are answered here.
/// Used on both sides: `masking` is true for a client.
final class WebSocketTunnel: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    private let masking: Bool
    private var closing = false

    init(masking: Bool) { self.masking = masking }

    private func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: masking ? .random() : nil, data: data)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let f = unwrapInboundIn(data)
        switch f.opcode {
        case .binary, .continuation:
            context.fireChannelRead(wrapInboundOut(WebSocketUnmasking.unmaskedData(f)))
        case .ping:
            context.writeAndFlush(wrapOutboundOut(frame(.pong, WebSocketUnmasking.unmaskedData(f))), promise: nil)
        case .connectionClose:
            if closing {
                context.close(promise: nil)
            } else {
                closing = true
                var code = context.channel.allocator.buffer(capacity: 2)
                code.write(webSocketErrorCode: .normalClosure)
                context.writeAndFlush(wrapOutboundOut(frame(.connectionClose, code))).assumeIsolated()
                    .whenComplete { _ in context.close(promise: nil) }
            }
        default:
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(wrapOutboundOut(frame(.binary, unwrapOutboundIn(data))), promise: promise)
    }

    /// The SPDY side closes the connection: say so with a close frame first.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, !closing, context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        closing = true
        var code = context.channel.allocator.buffer(capacity: 2)
        code.write(webSocketErrorCode: .normalClosure)
        context.writeAndFlush(wrapOutboundOut(frame(.connectionClose, code))).assumeIsolated()
            .whenComplete { _ in context.close(mode: mode, promise: promise) }
    }
}
