import NIOCore

/// The client end of a SPDY streaming connection: opens the streams a Kubernetes client opens
/// (odd stream ids, `streamtype` headers; for port forwarding an error and a data stream per
/// connection, paired by `requestid`) and turns the server's frames into events.
final class SPDYClientHandler: ChannelInboundHandler, StreamClientHandler {
    typealias InboundIn = SPDYFrame
    typealias OutboundOut = SPDYFrame

    private let mode: StreamClientMode
    private let events: AsyncStream<StreamClientEvent>.Continuation
    private var context: ChannelHandlerContext?
    private let loop: any EventLoop
    private var nextID: UInt32 = 1
    private var streamOf: [StreamChannel: UInt32] = [:]
    private var channelOf: [UInt32: StreamChannel] = [:]
    private var errorText = ""
    /// Port forwarding: stream id → (port, is error stream); port → its current data stream.
    private var portStreams: [UInt32: (port: Int, error: Bool)] = [:]
    private var dataStream: [Int: UInt32] = [:]
    private var portErrors: [UInt32: String] = [:]
    private var requestID = 0
    private let output: StreamOutputSink?

    init(mode: StreamClientMode, loop: any EventLoop, events: AsyncStream<StreamClientEvent>.Continuation, output: StreamOutputSink? = nil) {
        self.loop = loop
        self.mode = mode
        self.events = events
        self.output = output
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        Self.watchClose(context) { [weak self] in self?.closed() }
        guard case .remoteCommand(let s) = mode else { return }
        // The order client-go uses: error first, then the data streams.
        var wanted: [StreamChannel] = [.error]
        if s.stdin { wanted.append(.stdin) }
        if s.stdout { wanted.append(.stdout) }
        if s.stderr { wanted.append(.stderr) }
        if s.tty { wanted.append(.resize) }
        for c in wanted {
            let name = switch c {
            case .error: "error"
            case .stdin: "stdin"
            case .stdout: "stdout"
            case .stderr: "stderr"
            case .resize: "resize"
            }
            let id = open(SPDYHeaders([("streamtype", name)]))
            streamOf[c] = id
            channelOf[id] = c
        }
        context.flush()
    }

    private func open(_ headers: SPDYHeaders) -> UInt32 {
        let id = nextID
        nextID += 2
        context?.write(wrapOutboundOut(.synStream(streamID: id, associatedStreamID: 0, priority: 0, fin: false,
                                                   unidirectional: false, headers: headers)), promise: nil)
        return id
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .data(id, fin, payload):
            if let output, let c = channelOf[id], c == .stdout || c == .stderr {
                payload.withUnsafeReadableBytes { output(c == .stderr, $0) }
                return
            }
            let bytes = Array(payload.readableBytesView)
            if let c = channelOf[id] {
                switch c {
                case .stdout where !bytes.isEmpty: events.yield(.stdout(bytes))
                case .stderr where !bytes.isEmpty: events.yield(.stderr(bytes))
                case .error:
                    errorText += String(decoding: bytes, as: UTF8.self)
                    if fin { events.yield(.status(errorText)) }
                default: break
                }
            } else if let p = portStreams[id] {
                if p.error {
                    portErrors[id, default: ""] += String(decoding: bytes, as: UTF8.self)
                    if fin, let text = portErrors[id], !text.isEmpty { events.yield(.portError(port: p.port, text)) }
                } else {
                    if !bytes.isEmpty { events.yield(.portData(port: p.port, bytes)) }
                    if fin { events.yield(.portClosed(port: p.port)) }
                }
            }
        case let .rstStream(id, _):
            if let p = portStreams[id], !p.error { events.yield(.portClosed(port: p.port)) }
        case let .ping(id):
            context.writeAndFlush(wrapOutboundOut(.ping(id: id)), promise: nil)
        default:
            break
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
        context = nil
        events.yield(.closed)
        events.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: StreamClientHandler

    private func write(_ id: UInt32, _ bytes: [UInt8], fin: Bool) -> EventLoopFuture<Void> {
        guard let context else { return failed() }
        return context.writeAndFlush(wrapOutboundOut(.data(streamID: id, fin: fin, payload: ByteBuffer(bytes: bytes))))
    }

    private func failed() -> EventLoopFuture<Void> {
        loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
    }

    func send(_ channel: StreamChannel, _ bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard let id = streamOf[channel] else { return failed() }
        return write(id, bytes, fin: false)
    }

    func closeStdin() -> EventLoopFuture<Void> {
        guard let id = streamOf[.stdin] else { return failed() }
        return write(id, [], fin: true)
    }

    func openPort(_ port: Int) -> EventLoopFuture<Void> {
        guard let context else { return failed() }
        requestID += 1
        let errorID = open(SPDYHeaders([("streamtype", "error"), ("port", String(port)), ("requestid", String(requestID))]))
        let dataID = open(SPDYHeaders([("streamtype", "data"), ("port", String(port)), ("requestid", String(requestID))]))
        portStreams[errorID] = (port, true)
        portStreams[dataID] = (port, false)
        dataStream[port] = dataID
        // client-go half-closes the error stream at once: only the server writes on it.
        context.write(wrapOutboundOut(.data(streamID: errorID, fin: true, payload: ByteBuffer())), promise: nil)
        context.flush()
        return context.eventLoop.makeSucceededVoidFuture()
    }

    func sendPort(_ port: Int, _ bytes: [UInt8]) -> EventLoopFuture<Void> {
        guard let id = dataStream[port] else { return failed() }
        return write(id, bytes, fin: false)
    }

    func closePort(_ port: Int) -> EventLoopFuture<Void> {
        guard let id = dataStream[port] else { return failed() }
        return write(id, [], fin: true)
    }
}
