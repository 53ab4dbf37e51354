public import NIOCore
import NIOHTTP2

/// How a CRI connection's pings are policed.
public struct ConnectionPolicy: Sendable {
    /// Pings closer together than this count as strikes, but only while no RPC is open and none
    /// opened or closed since the previous ping. grpc-go's server uses its keepalive MinTime
    /// (5 minutes by default) the same way.
    public var minIdlePingInterval: TimeAmount
    /// Strikes tolerated before the connection is closed with GOAWAY ENHANCE_YOUR_CALM.
    public var maxPingStrikes: Int

    public init(minIdlePingInterval: TimeAmount = .minutes(5), maxPingStrikes: Int = 2) {
        self.minIdlePingInterval = minIdlePingInterval
        self.maxPingStrikes = maxPingStrikes
    }
}

/// Sits between NIOHTTP2's handler and the gRPC transport's connection handler of one accepted
/// connection. It knows every stream the server accepted (each stream registers itself when it
/// is created), and from that:
/// - every GOAWAY that leaves the connection carries the highest stream the server accepted,
///   whoever wrote it: a client retries transparently only the streams above LastStreamID, so a
///   lower one makes it replay RPCs the server is running;
/// - a PING (reported by `PingFrameFilter`, which answers it) is a strike only when it comes with
///   no RPC activity, as in grpc-go's server: the PING grpc-go sends with every WINDOW_UPDATE
///   while responses flow is never one.
///
/// Written here because the transport offers no hook for either; it is the connection-level
/// seam the transport does expose (a handler added once the pipeline is configured).
final class ConnectionPolicyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let policy: ConnectionPolicy
    private var context: ChannelHandlerContext?
    private var highestStreamID: HTTP2StreamID = .rootStream
    private var openStreams = 0
    private var activitySincePing = false
    private var lastPing: NIODeadline?
    private var strikes = 0
    private var closing = false

    init(policy: ConnectionPolicy) { self.policy = policy }

    /// Adds the handler right after NIOHTTP2's, so that it sees the connection's own frames in
    /// both directions. Called on the connection's event loop once its pipeline is configured.
    /// The client's PINGs are taken off the byte stream before swift-nio-http2 sees them (see
    /// `PingFrameFilter`) and reported here.
    static func install(in channel: any Channel, policy: ConnectionPolicy) throws {
        let ops = channel.pipeline.syncOperations
        let http2 = try ops.handler(type: NIOHTTP2Handler.self)
        let handler = ConnectionPolicyHandler(policy: policy)
        try ops.addHandler(handler, position: .after(http2))
        try ops.addHandler(PingFrameFilter { _ in handler.receivedPing() }, position: .first)
    }

    /// Records an accepted stream with its connection's handler. Called on the event loop from
    /// the stream's initializer, before any of the stream's frames reach the application.
    static func register(stream: any Channel) {
        guard let parent = stream.parent,
              let handler = try? parent.pipeline.syncOperations.handler(type: ConnectionPolicyHandler.self),
              let id = try? stream.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID) else { return }
        handler.streamOpened(id)
        stream.closeFuture.assumeIsolated().whenComplete { _ in handler.streamClosed() }
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    private func streamOpened(_ id: HTTP2StreamID) {
        if id > highestStreamID { highestStreamID = id }
        openStreams += 1
        activitySincePing = true
    }

    private func streamClosed() {
        openStreams -= 1
        activitySincePing = true
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var frame = unwrapOutboundIn(data)
        // `.maxID` is the first half of a graceful shutdown (no stream refused yet); any other
        // value is a promise about which streams were not processed, and must be true.
        if case .goAway(let last, let code, let opaque) = frame.payload, last != .maxID, last < highestStreamID {
            frame.payload = .goAway(lastStreamID: highestStreamID, errorCode: code, opaqueData: opaque)
        }
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    /// A PING arrived (and was answered). Too many with no RPC activity close the connection.
    func receivedPing() {
        guard let context else { return }
        let now = NIODeadline.now()
        defer { lastPing = now }
        if openStreams > 0 || activitySincePing {
            activitySincePing = false
            strikes = 0
            return
        }
        if let last = lastPing, last + policy.minIdlePingInterval > now { strikes += 1 }
        guard strikes > policy.maxPingStrikes, !closing else { return }
        closing = true
        let goAway = HTTP2Frame(streamID: .rootStream, payload: .goAway(
            lastStreamID: highestStreamID, errorCode: .enhanceYourCalm,
            opaqueData: context.channel.allocator.buffer(string: "too_many_pings")))
        context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
        // A tick later, so that the GOAWAY is on the wire before the connection closes.
        context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
    }
}
