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

    /// Every byte but a PING's is forwarded as slices of the read's own buffer (no copy); only a
    /// header or PING split across reads is gathered in `pending`.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // `whole` keeps the read's bytes readable for slicing (NIO slices only readable bytes);
        // `input` is the cursor. From `runStart` up to the cursor is forwarded as one slice.
        let whole = unwrapInboundIn(data)
        var input = whole
        var runStart = input.readerIndex
        func forwardRun() {
            if input.readerIndex > runStart {
                context.fireChannelRead(wrapInboundOut(whole.getSlice(at: runStart, length: input.readerIndex - runStart)!))
            }
            runStart = input.readerIndex
        }
        while input.readableBytes > 0 {
            if prefaceRemaining > 0 || passThrough > 0 {
                let n = min(prefaceRemaining > 0 ? prefaceRemaining : passThrough, input.readableBytes)
                input.moveReaderIndex(forwardBy: n)
                if prefaceRemaining > 0 { prefaceRemaining -= n } else { passThrough -= n }
                continue
            }
            if pending.readableBytes == 0 {
                // At a frame boundary, the header whole in this read (the common case).
                guard input.readableBytes >= Self.headerLength else {
                    forwardRun()
                    pending.writeBuffer(&input)
                    runStart = input.readerIndex
                    break
                }
                let (length, isPing) = Self.header(input, at: input.readerIndex)
                if !isPing {
                    // Anything else (a malformed PING included) is swift-nio-http2's to judge.
                    input.moveReaderIndex(forwardBy: Self.headerLength)
                    passThrough = length
                    continue
                }
                // What came before the PING reaches swift-nio-http2 first, so that the policy
                // sees the streams those frames opened, in the client's order.
                forwardRun()
                guard input.readableBytes >= Self.headerLength + length else {
                    pending.writeBuffer(&input)
                    runStart = input.readerIndex
                    break
                }
                pending = input.readSlice(length: Self.headerLength + length)!
                runStart = input.readerIndex
                answerPing(context: context)
                continue
            }
            // A header or PING begun in an earlier read (nothing of this read is forwarded yet).
            if pending.readableBytes < Self.headerLength {
                var slice = input.readSlice(length: min(Self.headerLength - pending.readableBytes, input.readableBytes))!
                pending.writeBuffer(&slice)
                runStart = input.readerIndex
                if pending.readableBytes < Self.headerLength { break }
            }
            let (length, isPing) = Self.header(pending, at: pending.readerIndex)
            if !isPing {
                context.fireChannelRead(wrapInboundOut(pending))
                pending = ByteBuffer()
                passThrough = length
                continue
            }
            var slice = input.readSlice(length: min(Self.headerLength + length - pending.readableBytes, input.readableBytes))!
            pending.writeBuffer(&slice)
            runStart = input.readerIndex
            if pending.readableBytes < Self.headerLength + length { break }
            answerPing(context: context)
        }
        forwardRun()
    }

    /// The frame's payload length, and whether it is a PING this filter answers.
    private static func header(_ b: ByteBuffer, at i: Int) -> (length: Int, isPing: Bool) {
        let length = Int(b.getInteger(at: i, as: UInt8.self)!) << 16 | Int(b.getInteger(at: i + 1, as: UInt16.self)!)
        let type = b.getInteger(at: i + 3, as: UInt8.self)!
        let flags = b.getInteger(at: i + 4, as: UInt8.self)!
        return (length, type == pingType && flags & ackFlag == 0 && length == 8)
    }

    /// Writes the PING's ACK straight to the socket, between whole frames of swift-nio-http2's
    /// (each of its writes is whole frames), and tells the policy.
    private func answerPing(context: ChannelHandlerContext) {
        var ack = pending
        pending = ByteBuffer()
        ack.setInteger(Self.ackFlag, at: ack.readerIndex + 4)
        context.writeAndFlush(wrapOutboundOut(ack), promise: nil)
        onPing(context)
    }
}
