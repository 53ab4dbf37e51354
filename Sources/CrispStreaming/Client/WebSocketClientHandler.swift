import NIOCore
import NIOWebSocket

/// The client end of a WebSocket streaming connection: one channel byte before every message;
/// `v5.channel.k8s.io` closes stdin with a message on channel 255. For port forwarding the
/// first message on each channel is the port number, which is stripped here.
final class WebSocketClientHandler: ChannelInboundHandler, StreamClientHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let mode: StreamClientMode
    private let protocolName: String
    private let events: AsyncStream<StreamClientEvent>.Continuation
    private var context: ChannelHandlerContext?
    private let loop: any EventLoop
    private var errorText = ""
    private var sawPreamble: Set<UInt8> = []
    private var portErrors: [Int: String] = [:]
    /// Writes data frames with fast masking, when the pipeline has one (see WebSocketFrameWriter).
    private var writer: WebSocketFrameWriter?
    private let output: StreamOutputSink?

    init(mode: StreamClientMode, protocolName: String, loop: any EventLoop, events: AsyncStream<StreamClientEvent>.Continuation,
         output: StreamOutputSink? = nil) {
        self.loop = loop
        self.mode = mode
        self.protocolName = protocolName
        self.events = events
        self.output = output
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writer = try? context.pipeline.syncOperations.handler(type: WebSocketFrameWriter.self)
        Self.watchClose(context) { [weak self] in self?.closed() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .binary:
            var d = WebSocketUnmasking.unmaskedData(frame)
            guard let channel = d.readInteger(as: UInt8.self) else { return }
            message(channel, d)
        case .connectionClose:
            // Answer the close handshake, then hang up.
            finishStatus()
            var data = context.channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: .normalClosure)
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
            context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: WebSocketUnmasking.unmaskedData(frame))),
                                  promise: nil)
        default:
            break
        }
    }

    private func message(_ channel: UInt8, _ data: ByteBuffer) {
        var d = data
        switch mode {
        case .remoteCommand:
            if let output, let c = StreamChannel(rawValue: channel), c == .stdout || c == .stderr {
                d.withUnsafeReadableBytes { output(c == .stderr, $0) }
                return
            }
            let bytes = Array(d.readableBytesView)
            switch channel {
            case StreamChannel.stdout.rawValue where !bytes.isEmpty: events.yield(.stdout(bytes))
            case StreamChannel.stderr.rawValue where !bytes.isEmpty: events.yield(.stderr(bytes))
            case StreamChannel.error.rawValue: errorText += String(decoding: bytes, as: UTF8.self)
            default: break
            }
        case .portForward(let ports):
            let index = Int(channel / 2)
            guard ports.indices.contains(index) else { return }
            if !sawPreamble.contains(channel) {
                sawPreamble.insert(channel)
                d.moveReaderIndex(forwardBy: min(2, d.readableBytes))
            }
            let bytes = Array(d.readableBytesView)
            guard !bytes.isEmpty else { return }
            if channel % 2 == 0 {
                events.yield(.portData(port: ports[index], bytes))
            } else {
                portErrors[ports[index], default: ""] += String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    private var statusSent = false

    private func finishStatus() {
        guard !statusSent else { return }
        statusSent = true
        switch mode {
        case .remoteCommand: events.yield(.status(errorText))
        case .portForward(let ports):
            for p in ports {
                if let e = portErrors[p] { events.yield(.portError(port: p, e)) }
                events.yield(.portClosed(port: p))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    private var ended = false

    private func closed() {
        guard !ended else { return }
        ended = true
        finishStatus()
        context = nil
        events.yield(.closed)
        events.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: StreamClientHandler

    private func sendRaw(_ channel: UInt8, _ bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard let context else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 1)
        buffer.writeInteger(channel)
        buffer.writeBytes(bytes)
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: buffer)
        return writer?.send(frame) ?? context.writeAndFlush(wrapOutboundOut(frame))
    }

    func send(_ channel: StreamChannel, _ bytes: [UInt8]) -> EventLoopFuture<Void> { sendRaw(channel.rawValue, bytes) }

    func closeStdin() -> EventLoopFuture<Void> {
        guard protocolName == "v5.channel.k8s.io" else {
            return loop.makeSucceededVoidFuture()
        }
        return sendRaw(255, [StreamChannel.stdin.rawValue])
    }

    func openPort(_ port: Int) -> EventLoopFuture<Void> {
        loop.makeSucceededVoidFuture()
    }

    func sendPort(_ port: Int, _ bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard case .portForward(let ports) = mode, let i = ports.firstIndex(of: port) else {
            return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        return sendRaw(UInt8(2 * i), bytes)
    }

    func closePort(_ port: Int) -> EventLoopFuture<Void> {
        loop.makeSucceededVoidFuture()
    }
}
