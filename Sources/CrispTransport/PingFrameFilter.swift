import NIOCore
import NIOHTTP2

/// The first handler of a CRI connection, on raw bytes: it answers the client's PINGs itself and
/// keeps them from swift-nio-http2, passing every other byte through unchanged.
///
/// Why: grpc-go clients send a PING with the WINDOW_UPDATE that follows every response (their
/// bandwidth estimator), hundreds a minute on a busy connection. swift-nio-http2 rate-limits
/// control frames (200 in 30 s, not configurable through the gRPC transport) and treats the
/// client as misbehaving: GOAWAY ENHANCE_YOUR_CALM with LastStreamID 0, which makes grpc-go
/// replay every RPC in flight on a new connection. Pings are policed by `ConnectionPolicyHandler`
/// instead, which knows whether RPCs are active.
///
/// Hand-written because no library parses HTTP/2 framing below a handler that owns it; it reads
/// only the 9-byte frame headers (RFC 9113 §4.1) and the 8 bytes of PING payloads.
final class PingFrameFilter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let prefaceLength = 24
    private static let headerLength = 9
    private static let pingType: UInt8 = 6
    private static let ackFlag: UInt8 = 1

    /// The client connection preface still to pass through before frames begin.
    private var prefaceRemaining = PingFrameFilter.prefaceLength
    /// Payload bytes of the current (non-PING) frame still to pass through.
    private var passThrough = 0
    /// A frame header, or a PING frame, split across reads.
    private var pending = ByteBuffer()
    private let onPing: (ChannelHandlerContext) -> Void

    /// `onPing` is told of every PING the filter answered (on the event loop).
    init(onPing: @escaping (ChannelHandlerContext) -> Void) { self.onPing = onPing }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        var forward = context.channel.allocator.buffer(capacity: input.readableBytes)
        while input.readableBytes > 0 {
            if prefaceRemaining > 0 {
                let n = min(prefaceRemaining, input.readableBytes)
                var slice = input.readSlice(length: n)!
                forward.writeBuffer(&slice)
                prefaceRemaining -= n
                continue
            }
            if passThrough > 0 {
                let n = min(passThrough, input.readableBytes)
                var slice = input.readSlice(length: n)!
                forward.writeBuffer(&slice)
                passThrough -= n
                continue
            }
            // At a frame boundary: gather the 9-byte header (it may be split across reads).
            if pending.readableBytes < Self.headerLength {
                let n = min(Self.headerLength - pending.readableBytes, input.readableBytes)
                var slice = input.readSlice(length: n)!
                pending.writeBuffer(&slice)
                if pending.readableBytes < Self.headerLength { break }
            }
            let length = Int(pending.getInteger(at: pending.readerIndex, as: UInt8.self)!) << 16
                | Int(pending.getInteger(at: pending.readerIndex + 1, as: UInt16.self)!)
            let type = pending.getInteger(at: pending.readerIndex + 3, as: UInt8.self)!
            let flags = pending.getInteger(at: pending.readerIndex + 4, as: UInt8.self)!
            let isPing = type == Self.pingType && flags & Self.ackFlag == 0 && length == 8
            if !isPing {
                // Anything else (a malformed PING included) is swift-nio-http2's to judge.
                forward.writeBuffer(&pending)
                pending.clear()
                passThrough = length
                continue
            }
            let n = min(Self.headerLength + length - pending.readableBytes, input.readableBytes)
            var slice = input.readSlice(length: n)!
            pending.writeBuffer(&slice)
            if pending.readableBytes < Self.headerLength + length { break }
            // What came before the PING reaches swift-nio-http2 first, so that the policy sees
            // the streams those frames opened, in the client's order.
            if forward.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(forward))
                forward = context.channel.allocator.buffer(capacity: input.readableBytes)
            }
            answerPing(context: context)
        }
        if forward.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(forward)) }
    }

    /// Writes the PING's ACK straight to the socket, between whole frames of swift-nio-http2's
    /// (each of its writes is whole frames), and tells the policy.
    private func answerPing(context: ChannelHandlerContext) {
        var ack = pending
        pending.clear()
        ack.setInteger(Self.ackFlag, at: ack.readerIndex + 4)
        context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
        onPing(context)
    }
}
