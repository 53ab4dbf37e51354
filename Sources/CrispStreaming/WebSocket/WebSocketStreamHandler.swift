import CrispCore
import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// The server side of one WebSocket streaming connection (`v5`/`v4`/`base64` `channel.k8s.io`,
/// `v4.portforward.k8s.io`): every message starts with its channel number (an ASCII digit plus
/// base64 text for the base64 variants), then the bytes.
final class WebSocketStreamHandler: ChannelInboundHandler, RemoteCommandTransport {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Mode {
        case remoteCommand(RemoteCommandSession.Kind)
        case portForward(PortForwardRequest, ports: [Int])
    }

    let streamProtocol: StreamProtocol
    private let mode: Mode
    private let backend: any StreamingBackend
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var session: RemoteCommandSession?
    private var relays: [PortRelay] = []
    private var endedRelays = 0
    private var fragments: ByteBuffer?
    private var fragmentsAreText = false
    private var closing = false

    static let closeHandshakeTimeout = TimeAmount.seconds(5)

    init(mode: Mode, streamProtocol: StreamProtocol, backend: any StreamingBackend, logger: Logger) {
        self.mode = mode
        self.streamProtocol = streamProtocol
        self.backend = backend
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        Self.watchClose(context) { [weak self] in self?.connectionClosed() }
        switch mode {
        case .remoteCommand(let kind):
            // Every channel exists from the start: the session can begin at once.
            let s = RemoteCommandSession(kind: kind, backend: backend, loop: context.eventLoop, transport: self, logger: logger)
            session = s
            s.start()
        case .portForward(let request, let ports):
            // Channel 2i carries port i's data, 2i+1 its errors; each begins with the port number
            // (two bytes, little endian) so the client can match them.
            for (i, port) in ports.enumerated() {
                var preamble = ByteBuffer()
                preamble.writeInteger(UInt16(port), endianness: .little)
                sendRaw(UInt8(2 * i), preamble)
                sendRaw(UInt8(2 * i + 1), preamble)
                let relay = PortRelay(podID: request.podID, port: port, backend: backend, loop: context.eventLoop, sink: .init(
                    send: { [weak self] in self?.sendRaw(UInt8(2 * i), $0) },
                    finish: { [weak self] in self?.relayEnded() },
                    error: { [weak self] in self?.sendRaw(UInt8(2 * i + 1), ByteBuffer(string: $0)) },
                    isWritable: { [weak self] in self?.isWritable ?? false }), logger: logger)
                relays.append(relay)
                relay.start()
            }
            if ports.isEmpty { close() }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: WebSocketUnmasking.unmaskedData(frame))), promise: nil)
        case .connectionClose:
            if closing { context.close(promise: nil) } else { closeConnection(code: .normalClosure) }
        case .binary, .text:
            if frame.fin { message(WebSocketUnmasking.unmaskedData(frame), text: frame.opcode == .text) } else {
                fragments = WebSocketUnmasking.unmaskedData(frame)
                fragmentsAreText = frame.opcode == .text
            }
        case .continuation:
            var data = WebSocketUnmasking.unmaskedData(frame)
            fragments?.writeBuffer(&data)
            if frame.fin, let whole = fragments {
                fragments = nil
                message(whole, text: fragmentsAreText)
            }
        default:
            break
        }
    }

    private func message(_ data: ByteBuffer, text: Bool) {
        var d = data
        guard let first = d.readInteger(as: UInt8.self) else { return }
        var channel = first
        if streamProtocol.isBase64 {
            guard text, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { return }
            channel = first - UInt8(ascii: "0")
            guard let decoded = Data(base64Encoded: Data(d.readableBytesView)) else { return }
            d = ByteBuffer(bytes: decoded)
        }
        switch mode {
        case .remoteCommand:
            switch channel {
            case StreamChannel.stdin.rawValue: session?.stdinData(d)
            case StreamChannel.resize.rawValue: session?.resizeData(d)
            case 255:
                // v5: the client closed one of its channels; only stdin matters.
                if d.readInteger(as: UInt8.self) == StreamChannel.stdin.rawValue { session?.stdinEnd() }
            default: break
            }
        case .portForward:
            let index = Int(channel) / 2
            if channel % 2 == 0, relays.indices.contains(index) { relays[index].clientData(d) }
        }
    }

    private func relayEnded() {
        endedRelays += 1
        if endedRelays == relays.count { close() }
    }

    // MARK: transport

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ channel: StreamChannel, _ data: ByteBuffer) { sendRaw(channel.rawValue, data) }

    private func sendRaw(_ channel: UInt8, _ data: ByteBuffer) {
        guard let context, !closing else { return }
        var out = context.channel.allocator.buffer(capacity: data.readableBytes + 1)
        if streamProtocol.isBase64 {
            out.writeInteger(UInt8(ascii: "0") + channel)
            out.writeString(Data(data.readableBytesView).base64EncodedString())
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: out)), promise: nil)
        } else {
            out.writeInteger(channel)
            var d = data
            out.writeBuffer(&d)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .binary, data: out)), promise: nil)
        }
    }

    func finish(_ channel: StreamChannel) {}

    func setReading(_ on: Bool) {
        context?.channel.setOption(.autoRead, value: on).whenFailure { _ in }
        if on { context?.read() }
    }

    func close() { closeConnection(code: .normalClosure) }

    private func closeConnection(code: WebSocketErrorCode) {
        guard let context, !closing else { return }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        // RFC 6455: wait for the client's close frame before hanging up (it may still be finishing
        // its upgrade and would lose what was sent), but not for long.
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeHandshakeTimeout) { context.close(promise: nil) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session?.writabilityChanged()
        relays.forEach { $0.writabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionClosed()
        context.fireChannelInactive()
    }

    /// Idempotent: from channelInactive, or from the close watch when the client hung up during
    /// the upgrade.
    private func connectionClosed() {
        session?.transportClosed()
        relays.forEach { $0.close() }
        context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("streaming connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
