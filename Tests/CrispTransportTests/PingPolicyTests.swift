import CrispTestSupport
import CrispTransport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Synchronization
import Testing

/// grpc-go clients send a PING with every connection WINDOW_UPDATE. These tests send the same
/// frames with a hand-made HTTP/2 client against a server built exactly as crispd builds its own
/// (`CRIServerTransport.make`), and check that no RPC is refused or replayed because of them.
@Suite struct PingPolicyTests {
    @Test func bandwidthPingsWhileRPCsAreInFlightAreAccepted() async throws {
        try await withTestServer { server, gate, socket in
            let client = try RawHTTP2Client(unixSocket: socket)
            let streams: [UInt32] = [1, 3, 5, 7]
            // A server that closes the connection makes a write fail; what it sent first is read below.
            var writeError: (any Error)?
            do {
                // Each request with the WINDOW_UPDATE and PING grpc-go sends, in one write: the
                // server reads the PING in the same batch as the stream it follows.
                for (i, s) in streams.enumerated() {
                    try client.send(try client.unaryFrames(stream: s, path: "/crisp.test.Gate/Wait", message: [UInt8(i)])
                                    + [RawHTTP2Client.windowUpdate(increment: 5), RawHTTP2Client.ping(UInt64(i + 1))])
                }
                // Many more, as grpc-go sends while responses of other calls flow.
                for i in 0..<12 {
                    try client.sendWindowUpdate(increment: 5)
                    try client.sendPing(UInt64(100 + i))
                }
            } catch { writeError = error }
            if writeError == nil { try await gate.waitForCalls(streams.count) }
            await gate.open()
            let outcome = try await Self.readUntilDone(client, streams: Set(streams), answeringDataWithPings: true)
            #expect(writeError == nil, "the server closed the connection: \(String(describing: writeError))")
            #expect(outcome.goAways.isEmpty, "the server sent GOAWAY: \(outcome.goAways)")
            #expect(outcome.statuses == Dictionary(uniqueKeysWithValues: streams.map { ($0, "0") }))
            #expect(gate.calls == streams.count, "each RPC must run exactly once")
        }
    }

    /// grpc-go answers every response with a WINDOW_UPDATE and a PING, so a busy client sends
    /// hundreds of PINGs a minute on one connection; swift-nio-http2 alone calls more than 200
    /// control frames in 30 s a flood and closes the connection with GOAWAY LastStreamID 0.
    @Test func aBusyClientsPingsNeverCloseTheConnection() async throws {
        try await withTestServer { _, gate, socket in
            await gate.open()
            let client = try RawHTTP2Client(unixSocket: socket)
            let rounds: UInt32 = 300
            var all: Outcome = Outcome()
            for round in 0..<rounds {
                let s = 2 * round + 1
                try client.send(try client.unaryFrames(stream: s, path: "/crisp.test.Gate/Wait", message: [1]))
                let o = try await Self.readUntilDone(client, streams: [s], answeringDataWithPings: true)
                all.goAways += o.goAways
                for (k, v) in o.statuses { all.statuses[k] = v }
                if o.closed || !o.goAways.isEmpty { break }
                // The PING grpc-go sends with the WINDOW_UPDATE after the trailers, as well.
                try client.send([RawHTTP2Client.windowUpdate(increment: 10), RawHTTP2Client.ping(UInt64(round))])
            }
            #expect(all.goAways.isEmpty, "the server sent GOAWAY: \(all.goAways)")
            #expect(all.statuses.count == Int(rounds))
            #expect(gate.calls == Int(rounds))
        }
    }

    @Test func idlePingFloodIsRefusedNamingEveryAcceptedStream() async throws {
        try await withTestServer { _, gate, socket in
            await gate.open()
            let client = try RawHTTP2Client(unixSocket: socket)
            try client.sendUnary(stream: 1, path: "/crisp.test.Gate/Wait", message: [1])
            try client.sendUnary(stream: 3, path: "/crisp.test.Gate/Wait", message: [2])
            let first = try await Self.readUntilDone(client, streams: [1, 3], answeringDataWithPings: false)
            #expect(first.statuses == [1: "0", 3: "0"])
            // One ping after the last stream closed is activity; the ones after it, with nothing
            // open, are strikes.
            for i in 0..<6 { try client.sendPing(UInt64(i + 1)) }
            let rest = try await Self.readUntilDone(client, streams: [], answeringDataWithPings: false)
            let goAway = try #require(rest.goAways.first)
            #expect(goAway.errorCode == 11, "ENHANCE_YOUR_CALM")
            #expect(goAway.lastStreamID == 3)
            #expect(rest.closed)
        }
    }

    @Test func gracefulShutdownGoAwayCoversRPCsInFlight() async throws {
        try await withTestServer { server, gate, socket in
            let client = try RawHTTP2Client(unixSocket: socket)
            try client.sendUnary(stream: 1, path: "/crisp.test.Gate/Wait", message: [1])
            try client.sendUnary(stream: 3, path: "/crisp.test.Gate/Wait", message: [2])
            try await gate.waitForCalls(2)
            server.beginGracefulShutdown()
            async let outcome = Self.readUntilDone(client, streams: [1, 3], answeringDataWithPings: true, untilClosed: true)
            await gate.open()
            let o = try await outcome
            #expect(o.statuses == [1: "0", 3: "0"])
            #expect(!o.goAways.isEmpty)
            for g in o.goAways { #expect(g.lastStreamID >= 3, "GOAWAY \(g) would make a client replay an RPC in flight") }
            #expect(gate.calls == 2)
        }
    }

    // MARK: support

    struct Outcome: Sendable {
        var goAways: [(lastStreamID: UInt32, errorCode: UInt32)] = []
        var statuses: [UInt32: String] = [:]
        var closed = false
    }

    /// Reads frames on a thread of its own (the client blocks) until every stream in `streams`
    /// has its trailers (and, with `untilClosed`, on), or the server closes the connection. Like grpc-go, it can answer each
    /// DATA frame with a WINDOW_UPDATE and a PING.
    static func readUntilDone(_ client: RawHTTP2Client, streams: Set<UInt32>, answeringDataWithPings: Bool,
                              untilClosed: Bool = false) async throws -> Outcome {
        let box = UncheckedClient(client)
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do {
                    var o = Outcome()
                    var ping: UInt64 = 1000
                    while Set(o.statuses.keys) != streams || streams.isEmpty || untilClosed {
                        guard let f = try box.client.readFrame() else { o.closed = true; break }
                        // Writes may fail once the server closed its side; what it sent is still read.
                        try? box.client.acknowledge(f)
                        if let g = f.goAway { o.goAways.append(g) }
                        if f.type == RawHTTP2Client.Frame.data && answeringDataWithPings {
                            try? box.client.sendWindowUpdate(increment: UInt32(max(f.payload.count, 1)))
                            ping += 1
                            try? box.client.sendPing(ping)
                        }
                        if f.type == RawHTTP2Client.Frame.headers {
                            let h = try box.client.decodeHeaders(f)
                            if let status = h["grpc-status"] { o.statuses[f.streamID] = status }
                        }
                    }
                    continuation.resume(returning: o)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    func withTestServer(_ body: (GRPCServer<HTTP2ServerTransport.Posix>, Gate, String) async throws -> Void) async throws {
        let dir = try TempDirectory()
        defer { dir.remove() }
        let socket = dir.path + "/t.sock"
        let gate = Gate()
        let server = GRPCServer(transport: CRIServerTransport.make(.init(socketPath: socket, maxRequestPayloadSize: 1 << 20)),
                                services: [GateService(gate: gate)])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            _ = try await server.listeningAddress
            do {
                try await body(server, gate, socket)
            } catch {
                await gate.open()
                server.beginGracefulShutdown()
                throw error
            }
            await gate.open()
            server.beginGracefulShutdown()
        }
    }
}

/// The client is used by one reading thread at a time; the test hands it over and waits.
struct UncheckedClient: @unchecked Sendable {
    let client: RawHTTP2Client
    init(_ client: RawHTTP2Client) { self.client = client }
}

/// Holds every call until the test opens it, and counts the calls that arrived.
final class Gate: Sendable {
    private let state = Mutex<(calls: Int, open: Bool, waiters: [CheckedContinuation<Void, Never>],
                               callWaiters: [(Int, CheckedContinuation<Void, Never>)])>((0, false, [], []))

    var calls: Int { state.withLock { $0.calls } }

    func arrive() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.calls += 1
                if s.open { return [c] }
                s.waiters.append(c)
                return []
            } + wakeCallWaiters()
            ready.forEach { $0.resume() }
        }
    }

    private func wakeCallWaiters() -> [CheckedContinuation<Void, Never>] {
        state.withLock { s in
            let due = s.callWaiters.filter { $0.0 <= s.calls }.map(\.1)
            s.callWaiters.removeAll { $0.0 <= s.calls }
            return due
        }
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String
    }

    /// Waits until `n` calls arrived; fails after 10 s (a server that dropped the connection
    /// would otherwise leave the test hanging).
    func waitForCalls(_ n: Int) async throws {
        let timeout = Task {
            try await Task.sleep(for: .seconds(10))
            wakeAll()
        }
        defer { timeout.cancel() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.calls >= n { return true }
                s.callWaiters.append((n, c))
                return false
            }
            if now { c.resume() }
        }
        let calls = self.calls
        if calls < n { throw TimedOut(description: "only \(calls) of \(n) calls arrived within 10 s") }
    }

    private func wakeAll() {
        let all = state.withLock { s in
            defer { s.callWaiters = [] }
            return s.callWaiters.map(\.1)
        }
        all.forEach { $0.resume() }
    }

    func open() async {
        let waiting = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        waiting.forEach { $0.resume() }
    }
}

struct GateService: RegistrableRPCService {
    let gate: Gate

    struct Bytes: MessageSerializer, MessageDeserializer {
        func serialize<B: GRPCContiguousBytes>(_ message: [UInt8]) throws -> B { B(message) }
        func deserialize<B: GRPCContiguousBytes>(_ bytes: B) throws -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let method = MethodDescriptor(fullyQualifiedService: "crisp.test.Gate", method: "Wait")
        router.registerHandler(forMethod: method, deserializer: Bytes(), serializer: Bytes()) { request, _ in
            let single = try await ServerRequest(stream: request)
            await gate.arrive()
            return StreamingServerResponse(single: ServerResponse(message: single.message + Array(repeating: 7, count: 64)))
        }
    }
}
