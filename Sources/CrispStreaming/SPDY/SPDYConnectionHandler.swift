import CrispCore
import Logging
import NIOCore

/// The server side of one SPDY/3.1 streaming connection, after the HTTP upgrade: answers each
/// stream the client opens, routes its data to the exec/attach session or to the forwarded
/// port it belongs to, and writes their output back as DATA frames.
///
/// Flow control: spdystream (the Go peer) never sends WINDOW_UPDATE and ignores the ones it gets,
/// as does the kubelet's own server, so windows are not enforced; backpressure comes from the
/// TCP connection's writability instead (outputs stop being read while it is full).
final class SPDYConnectionHandler: ChannelInboundHandler, RemoteCommandTransport {
    typealias InboundIn = SPDYFrame
    typealias OutboundOut = SPDYFrame

    enum Mode {
        case remoteCommand(RemoteCommandSession.Kind)
        case portForward(PortForwardRequest)
    }

    let streamProtocol: StreamProtocol
    private let mode: Mode
    private let backend: any StreamingBackend
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var session: RemoteCommandSession?
    private var expected: Set<StreamChannel> = []
    private var streamOf: [StreamChannel: UInt32] = [:]
    private var channelOf: [UInt32: StreamChannel] = [:]
    private var finished: Set<UInt32> = []
    private var lastStreamID: UInt32 = 0
    private var creationTimer: Scheduled<Void>?
    private var closing = false
    /// Port forwarding: the error and data stream of each request, paired by `requestid`.
    private var pairs: [String: PortPair] = [:]
    private var pairOf: [UInt32: String] = [:]

    final class PortPair {
        var errorStream: UInt32?
        var dataStream: UInt32?
        var port: Int?
        var relay: PortRelay?
    }

    /// How long the client has to open every stream the session needs (the kubelet's value).
    static let streamCreationTimeout = TimeAmount.seconds(30)

    init(mode: Mode, streamProtocol: StreamProtocol, backend: any StreamingBackend, logger: Logger) {
        self.mode = mode
        self.streamProtocol = streamProtocol
        self.backend = backend
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        Self.watchClose(context) { [weak self] in self?.connectionClosed() }
        if case .remoteCommand(let kind) = mode {
            let s = RemoteCommandSession(kind: kind, backend: backend, loop: context.eventLoop, transport: self, logger: logger)
            session = s
            expected = s.expectedChannels(streamProtocol)
            creationTimer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.streamCreationTimeout) { [weak self] in
                guard let self, let session = self.session, self.expected.isSubset(of: Set(self.streamOf.keys)) == false else { return }
                self.logger.info("streaming client did not open every stream in time", metadata: ["expected": "\(self.expected)"])
                session.transportClosed()
                self.context?.close(promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .synStream(id, _, _, fin, _, headers):
            lastStreamID = max(lastStreamID, id)
            context.writeAndFlush(wrapOutboundOut(.synReply(streamID: id, fin: false, headers: SPDYHeaders())), promise: nil)
            opened(id, headers: headers)
            if fin { ended(id) }
        case let .data(id, fin, payload):
            received(id, payload)
            if fin { ended(id) }
        case let .rstStream(id, _):
            reset(id)
        case let .ping(id):
            context.writeAndFlush(wrapOutboundOut(.ping(id: id)), promise: nil)
        case .goAway:
            context.close(promise: nil)
        case .synReply, .settings, .headers, .windowUpdate:
            break
        }
    }

    // MARK: streams

    private func opened(_ id: UInt32, headers: SPDYHeaders) {
        let type = headers["streamtype"] ?? ""
        switch mode {
        case .remoteCommand:
            let channel: StreamChannel? = switch type {
            case "error": .error
            case "stdin": .stdin
            case "stdout": .stdout
            case "stderr": .stderr
            case "resize": .resize
            default: nil
            }
            guard let channel else {
                context?.writeAndFlush(wrapOutboundOut(.rstStream(streamID: id, status: SPDYRstStatus.protocolError)), promise: nil)
                return
            }
            streamOf[channel] = id
            channelOf[id] = channel
            if expected.isSubset(of: Set(streamOf.keys)), let session {
                creationTimer?.cancel()
                session.start()
            }
        case .portForward(let request):
            guard let portText = headers["port"], let port = Int(portText), (1...65535).contains(port) else {
                context?.writeAndFlush(wrapOutboundOut(.rstStream(streamID: id, status: SPDYRstStatus.protocolError)), promise: nil)
                return
            }
            let key = headers["requestid"] ?? portText
            let pair = pairs[key] ?? PortPair()
            pairs[key] = pair
            pairOf[id] = key
            pair.port = port
            switch type {
            case "error": pair.errorStream = id
            case "data": pair.dataStream = id
            default:
                context?.writeAndFlush(wrapOutboundOut(.rstStream(streamID: id, status: SPDYRstStatus.protocolError)), promise: nil)
                return
            }
            if let errorStream = pair.errorStream, let dataStream = pair.dataStream, pair.relay == nil, let loop = context?.eventLoop {
                let relay = PortRelay(podID: request.podID, port: port, backend: backend, loop: loop, sink: .init(
                    send: { [weak self] data in self?.write(dataStream, data) },
                    finish: { [weak self] in
                        self?.finishStream(dataStream)
                        self?.finishStream(errorStream)
                    },
                    error: { [weak self] message in self?.write(errorStream, ByteBuffer(string: message)) },
                    isWritable: { [weak self] in self?.isWritable ?? false }), logger: logger)
                pair.relay = relay
                relay.start()
            }
        }
    }

    private func received(_ id: UInt32, _ payload: ByteBuffer) {
        if let channel = channelOf[id] {
            switch channel {
            case .stdin: session?.stdinData(payload)
            case .resize: session?.resizeData(payload)
            default: break
            }
        } else if let key = pairOf[id], let pair = pairs[key], pair.dataStream == id {
            pair.relay?.clientData(payload)
        }
    }

    /// The client will send no more on stream `id` (FIN).
    private func ended(_ id: UInt32) {
        if channelOf[id] == .stdin {
            session?.stdinEnd()
        } else if let key = pairOf[id], let pair = pairs[key], pair.dataStream == id {
            pair.relay?.clientEnd()
        }
    }

    private func reset(_ id: UInt32) {
        finished.insert(id)
        if channelOf[id] == .stdin {
            session?.stdinEnd()
        } else if let key = pairOf[id], let pair = pairs[key] {
            pair.relay?.close()
            pairs[key] = nil
        }
    }

    // MARK: writing

    private func write(_ id: UInt32, _ data: ByteBuffer) {
        guard let context, !finished.contains(id) else { return }
        context.writeAndFlush(wrapOutboundOut(.data(streamID: id, fin: false, payload: data)), promise: nil)
    }

    private func finishStream(_ id: UInt32) {
        guard let context, !finished.contains(id) else { return }
        finished.insert(id)
        context.writeAndFlush(wrapOutboundOut(.data(streamID: id, fin: true, payload: ByteBuffer())), promise: nil)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func send(_ channel: StreamChannel, _ data: ByteBuffer) {
        if let id = streamOf[channel] { write(id, data) }
    }

    func finish(_ channel: StreamChannel) {
        if let id = streamOf[channel] { finishStream(id) }
    }

    func setReading(_ on: Bool) {
        context?.channel.setOption(.autoRead, value: on).whenFailure { _ in }
        if on { context?.read() }
    }

    func close() {
        guard let context, !closing else { return }
        closing = true
        let goAway = wrapOutboundOut(.goAway(lastGoodStreamID: lastStreamID, status: SPDYGoAwayStatus.ok))
        context.writeAndFlush(goAway).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: connection events

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session?.writabilityChanged()
        for pair in pairs.values { pair.relay?.writabilityChanged() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionClosed()
        context.fireChannelInactive()
    }

    /// Idempotent: from channelInactive, or from the close watch when the client hung up during
    /// the upgrade.
    private func connectionClosed() {
        creationTimer?.cancel()
        session?.transportClosed()
        for pair in pairs.values { pair.relay?.close() }
        pairs.removeAll()
        context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("streaming connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
