import NIOCore
import NIOWebSocket

/// Writes the client's data frames past NIOWebSocket's `WebSocketFrameEncoder`.
///
/// Why hand-written: a client must mask every byte it sends (RFC 6455 §5.3), and NIOWebSocket
/// masks one byte at a time with a modulo per byte, which held `crispctl exec -i` over
/// WebSocket to half its SPDY speed. NIO's encoder cannot be removed from the pipeline its
/// upgrader builds, so this handler sits on its head side: frames given to `send` are encoded
/// here (the header of RFC 6455 §5.2; the payload masked in place eight bytes at a time by
/// `WebSocketUnmasking`, XOR being its own inverse) and written from this handler's context,
/// which NIO's encoder never sees. Everything else passes through.
final class WebSocketFrameWriter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Encodes and writes `frame` and flushes; on the channel's event loop.
    func send(_ frame: WebSocketFrame) -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        let (header, payload) = Self.encode(frame, allocator: context.channel.allocator)
        context.write(wrapOutboundOut(header), promise: nil)
        return context.writeAndFlush(wrapOutboundOut(payload))
    }

    /// The frame's header (with any extension data) and its payload, masked when it has a key.
    static func encode(_ frame: WebSocketFrame, allocator: ByteBufferAllocator) -> (ByteBuffer, ByteBuffer) {
        var payload = frame.data
        let extensionData = frame.extensionData
        let length = payload.readableBytes + (extensionData?.readableBytes ?? 0)
        var header = allocator.buffer(capacity: 14 + (extensionData?.readableBytes ?? 0))
        var first = UInt8(webSocketOpcode: frame.opcode)
        if frame.fin { first |= 0x80 }
        if frame.rsv1 { first |= 0x40 }
        if frame.rsv2 { first |= 0x20 }
        if frame.rsv3 { first |= 0x10 }
        header.writeInteger(first)
        let maskBit: UInt8 = frame.maskKey == nil ? 0 : 0x80
        switch length {
        case ..<126:
            header.writeInteger(UInt8(length) | maskBit)
        case ..<65_536:
            header.writeInteger(126 | maskBit)
            header.writeInteger(UInt16(length))
        default:
            header.writeInteger(127 | maskBit)
            header.writeInteger(UInt64(length))
        }
        if let key = frame.maskKey { header.writeBytes(key) }
        if var ext = extensionData {
            if let key = frame.maskKey { WebSocketUnmasking.unmask(&ext, key: key) }
            header.writeBuffer(&ext)
        }
        if let key = frame.maskKey {
            WebSocketUnmasking.unmask(&payload, key: key, indexOffset: (extensionData?.readableBytes ?? 0) % 4)
        }
        return (header, payload)
    }
}
