public import CrispCore
import Foundation
import NIOCore
import NIOWebSocket
import Synchronization

/// The client side of exec, attach and port-forward URLs (crispctl, tests): connect, then send
/// stdin, resizes or port data, and read `events` until `.closed`.
public final class StreamClient: Sendable {
    public let events: AsyncStream<StreamClientEvent>
    let channel: any Channel
    let handler: NIOLoopBound<any StreamClientHandler>
    /// The sub-protocol the server chose.
    public let negotiated: String

    init(channel: any Channel, box: HandlerBox, events: AsyncStream<StreamClientEvent>) {
        self.channel = channel
        self.handler = box.get()!
        self.events = events
        self.negotiated = box.negotiated()
    }

    /// Which streams a remote command session opens.
    public struct Streams: Sendable {
        public var stdin: Bool
        public var stdout: Bool
        public var stderr: Bool
        public var tty: Bool
        public init(stdin: Bool, stdout: Bool = true, stderr: Bool = true, tty: Bool = false) {
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr && !tty
            self.tty = tty
        }
    }

    public static let remoteCommandProtocols: [StreamTransportKind: [String]] = [
        .spdy: ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"],
        .webSocket: ["v5.channel.k8s.io", "v4.channel.k8s.io"],
    ]

    /// An exec or attach session. `protocols` overrides the offered sub-protocols (tests);
    /// `output` takes stdout and stderr instead of `events`.
    public static func remoteCommand(url: String, transport: StreamTransportKind, streams: Streams,
                                     protocols: [String]? = nil, tls: StreamClientTLS? = nil,
                                     output: StreamOutputSink? = nil) async throws -> StreamClient {
        let offered = protocols ?? remoteCommandProtocols[transport]!
        let (events, continuation) = AsyncStream<StreamClientEvent>.makeStream()
        let box = HandlerBox()
        let channel = try await StreamClientConnection.open(url: url, transport: transport, protocols: offered, tls: tls) { ch, chosen in
            if transport == .spdy {
                let h = SPDYClientHandler(mode: .remoteCommand(streams), loop: ch.eventLoop, events: continuation, output: output)
                try ch.pipeline.syncOperations.addHandler(h)
                box.set(NIOLoopBound(h, eventLoop: ch.eventLoop), chosen)
            } else {
                let h = WebSocketClientHandler(mode: .remoteCommand(streams), protocolName: chosen, loop: ch.eventLoop, events: continuation,
                                               output: output)
                try ch.pipeline.syncOperations.addHandler(h)
                box.set(NIOLoopBound(h, eventLoop: ch.eventLoop), chosen)
            }
        }
        return StreamClient(channel: channel, box: box, events: events)
    }

    /// A port-forward session. Over SPDY, `connect(port:)` opens each connection; over WebSocket
    /// the ports are fixed here (one connection each).
    /// `tunnel`: over WebSocket, speak SPDY inside binary messages (`SPDY/3.1+portforward.k8s.io`,
    /// as client-go ≥ 1.30 does) instead of `v4.portforward.k8s.io` channels.
    public static func portForward(url: String, transport: StreamTransportKind, ports: [Int] = [], tunnel: Bool = false,
                                   tls: StreamClientTLS? = nil) async throws -> StreamClient {
        let (events, continuation) = AsyncStream<StreamClientEvent>.makeStream()
        let box = HandlerBox()
        var target = url
        if transport == .webSocket && !ports.isEmpty && !tunnel {
            target += (url.contains("?") ? "&" : "?") + "ports=" + ports.map(String.init).joined(separator: ",")
        }
        let offered = transport == .spdy ? ["portforward.k8s.io"] : tunnel ? ["SPDY/3.1+portforward.k8s.io"] : ["v4.portforward.k8s.io"]
        let channel = try await StreamClientConnection.open(url: target, transport: transport, protocols: offered, tls: tls) { ch, chosen in
            if transport == .spdy || tunnel {
                if tunnel {
                    try ch.pipeline.syncOperations.addHandler(WebSocketTunnel(masking: true))
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(SPDYFrameDecoder()))
                    try ch.pipeline.syncOperations.addHandler(SPDYFrameWriter())
                }
                let h = SPDYClientHandler(mode: .portForward([]), loop: ch.eventLoop, events: continuation)
                try ch.pipeline.syncOperations.addHandler(h)
                box.set(NIOLoopBound(h, eventLoop: ch.eventLoop), chosen)
            } else {
                let h = WebSocketClientHandler(mode: .portForward(ports), protocolName: chosen, loop: ch.eventLoop, events: continuation)
                try ch.pipeline.syncOperations.addHandler(h)
                box.set(NIOLoopBound(h, eventLoop: ch.eventLoop), chosen)
            }
        }
        return StreamClient(channel: channel, box: box, events: events)
    }

    private func onLoop(_ body: @escaping @Sendable (any StreamClientHandler) -> EventLoopFuture<Void>) async throws {
        let handler = self.handler
        try await channel.eventLoop.flatSubmit { body(handler.value) }.get()
    }

    public func send(stdin bytes: [UInt8]) async throws {
        try await onLoop { $0.send(.stdin, bytes) }
    }

    public func closeStdin() async throws {
        try await onLoop { $0.closeStdin() }
    }

    public func resize(columns: UInt16, rows: UInt16) async throws {
        try await onLoop { $0.send(.resize, Array(#"{"Width":\#(columns),"Height":\#(rows)}"#.utf8)) }
    }

    /// Port forwarding over SPDY: a new connection to `port` (error and data stream).
    public func connect(port: Int) async throws {
        try await onLoop { $0.openPort(port) }
    }

    public func send(port: Int, _ bytes: [UInt8]) async throws {
        try await onLoop { $0.sendPort(port, bytes) }
    }

    public func closeWrite(port: Int) async throws {
        try await onLoop { $0.closePort(port) }
    }

    /// Drops the connection at once (a client that goes away mid-session).
    public func abort() async {
        try? await channel.close()
    }

    /// Reads every event until the connection ends: stdout, stderr and the outcome.
    public func collect() async -> (stdout: [UInt8], stderr: [UInt8], outcome: StreamOutcome) {
        var out: [UInt8] = [], err: [UInt8] = [], status = ""
        for await e in events {
            switch e {
            case .stdout(let b): out += b
            case .stderr(let b): err += b
            case .status(let s): status = s
            default: break
            }
        }
        return (out, err, StreamOutcome(status: status))
    }
}

/// What the error stream said: success, an exit code, or a failure message.
public struct StreamOutcome: Sendable, Equatable {
    public var exitCode: Int32?
    public var message: String?

    public var succeeded: Bool { exitCode == 0 && message == nil }

    init(exitCode: Int32?, message: String?) {
        self.exitCode = exitCode
        self.message = message
    }

    /// v4/v5 send a metav1.Status; older versions plain text, nothing for success.
    public init(status: String) {
        guard !status.isEmpty else { self.init(exitCode: 0, message: nil); return }
        struct Status: Decodable {
            struct Details: Decodable {
                struct Cause: Decodable { var reason: String?; var message: String? }
                var causes: [Cause]?
            }
            var status: String?
            var message: String?
            var reason: String?
            var details: Details?
        }
        guard let s = try? JSONDecoder().decode(Status.self, from: Data(status.utf8)) else {
            self.init(exitCode: nil, message: status)
            return
        }
        if s.status == "Success" { self.init(exitCode: 0, message: nil); return }
        if s.reason == "NonZeroExitCode", let code = s.details?.causes?.first(where: { $0.reason == "ExitCode" })?.message.flatMap({ Int32($0) }) {
            self.init(exitCode: code, message: nil)
            return
        }
        self.init(exitCode: nil, message: s.message ?? status)
    }
}

/// Hands the handler made on the event loop back to the caller of `open`.
final class HandlerBox: Sendable {
    private let value = Mutex<(NIOLoopBound<any StreamClientHandler>?, String)>((nil, ""))
    func set(_ h: NIOLoopBound<some StreamClientHandler>, _ chosen: String) {
        let loop = h.eventLoop
        let erased = NIOLoopBound<any StreamClientHandler>(h.value, eventLoop: loop)
        value.withLock { $0 = (erased, chosen) }
    }
    func get() -> NIOLoopBound<any StreamClientHandler>? { value.withLock { $0.0 } }
    func negotiated() -> String { value.withLock { $0.1 } }
}

/// What the async API asks of a connection's handler (always on its event loop).
protocol StreamClientHandler: AnyObject {
    func send(_ channel: StreamChannel, _ bytes: [UInt8]) -> EventLoopFuture<Void>
    func closeStdin() -> EventLoopFuture<Void>
    func openPort(_ port: Int) -> EventLoopFuture<Void>
    func sendPort(_ port: Int, _ bytes: [UInt8]) -> EventLoopFuture<Void>
    func closePort(_ port: Int) -> EventLoopFuture<Void>
}

enum StreamClientMode {
    case remoteCommand(StreamClient.Streams)
    case portForward([Int])
}
