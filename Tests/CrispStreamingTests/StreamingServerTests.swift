import CrispCore
import CrispOS
@testable import CrispStreaming
import Foundation
import Glibc
import Logging
import Synchronization
import Testing

/// The streaming server end to end over loopback, with crisp's own SPDY and WebSocket clients,
/// against a backend that runs host commands (no containers needed).
@Suite struct StreamingServerTests {
    static func withServer(lifetime: Duration = .seconds(60), idle: Duration = .seconds(3600),
                           _ body: (StreamingServer, FakeStreamingBackend) async throws -> Void) async throws {
        let backend = FakeStreamingBackend()
        let server = StreamingServer(options: .init(idleTimeout: idle, tokenLifetime: lifetime), backend: backend, logger: Logger(label: "test"))
        try await server.start()
        do {
            try await body(server, backend)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    static func exec(_ command: String, tty: Bool = false, stdin: Bool = false) -> StreamTarget {
        .exec(ExecRequest(containerID: "c1", command: [command], tty: tty, stdin: stdin, stdout: true, stderr: !tty))
    }

    @Test(arguments: StreamTransportKind.allCases)
    func execReportsOutputAndExitCode(_ transport: StreamTransportKind) async throws {
        try await Self.withServer { server, _ in
            let url = server.url(for: Self.exec("echo out; echo err >&2; exit 3"))
            let client = try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: false))
            let (out, err, outcome) = await client.collect()
            #expect(String(decoding: out, as: UTF8.self) == "out\n")
            #expect(String(decoding: err, as: UTF8.self) == "err\n")
            #expect(outcome == StreamOutcome(exitCode: 3, message: nil))

            let ok = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("true")), transport: transport,
                                                          streams: .init(stdin: false))
            #expect(await ok.collect().outcome.succeeded)
        }
    }

    /// Every SPDY protocol version still works; v1–v3 report a failure as text.
    @Test(arguments: ["v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"])
    func olderSPDYVersions(_ version: String) async throws {
        try await Self.withServer { server, _ in
            let client = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("echo hi; exit 2")), transport: .spdy,
                                                              streams: .init(stdin: false), protocols: [version])
            #expect(client.negotiated == version)
            let (out, _, outcome) = await client.collect()
            #expect(String(decoding: out, as: UTF8.self) == "hi\n")
            #expect(outcome.message?.contains("exit code 2") == true)
        }
    }

    @Test(arguments: StreamTransportKind.allCases)
    func stdinRoundTripKeepsEveryByte(_ transport: StreamTransportKind) async throws {
        try await Self.withServer { server, _ in
            let client = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("cat", stdin: true)), transport: transport,
                                                              streams: .init(stdin: true))
            // 8 MiB of a pattern that does not repeat at chunk boundaries.
            var expected = Hasher()
            var sent = 0
            let chunk = 64 << 10
            let collector = Task { () -> (Int, Int) in
                var h = Hasher(), n = 0
                for await e in client.events { if case .stdout(let b) = e { h.combine(bytes: b); n += b.count } }
                return (n, h.finalize())
            }
            var seed: UInt32 = 1
            while sent < 8 << 20 {
                var block = [UInt8](repeating: 0, count: chunk)
                for i in block.indices { seed = seed &* 1_664_525 &+ 1_013_904_223; block[i] = UInt8(truncatingIfNeeded: seed >> 24) }
                expected.combine(bytes: block)
                try await client.send(stdin: block)
                sent += chunk
            }
            try await client.closeStdin()
            let (count, hash) = await collector.value
            #expect(count == sent)
            #expect(hash == expected.finalize())
        }
    }

    @Test(arguments: StreamTransportKind.allCases)
    func terminalSizeFollowsResizes(_ transport: StreamTransportKind) async throws {
        try await Self.withServer { server, _ in
            // The command may start before the client's first resize arrives, as with a real runtime:
            // it waits for a line before each look at the size.
            let url = server.url(for: Self.exec("read x; stty size; read y; stty size", tty: true, stdin: true))
            let client = try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: true, tty: true))
            try await client.resize(columns: 100, rows: 30)
            try await client.send(stdin: Array("\n".utf8))
            var seen = ""
            var sentSecond = false
            for await e in client.events {
                if case .stdout(let b) = e { seen += String(decoding: b, as: UTF8.self) }
                if !sentSecond, seen.contains("30 100") {
                    sentSecond = true
                    try await client.resize(columns: 120, rows: 40)
                    try await client.send(stdin: Array("\n".utf8))
                }
            }
            let sizes = seen.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.contains(" ") }
            #expect(sizes.first == "30 100", "\(seen.debugDescription)")
            #expect(sizes.last == "40 120", "\(seen.debugDescription)")
        }
    }

    @Test(arguments: StreamTransportKind.allCases)
    func attachCarriesStdinAndBothOutputs(_ transport: StreamTransportKind) async throws {
        try await Self.withServer { server, _ in
            let url = server.url(for: .attach(AttachRequest(containerID: "c1", tty: false, stdin: true, stdout: true, stderr: true)))
            let client = try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: true))
            try await client.send(stdin: Array("hello".utf8))
            try await client.send(stdin: Array("err:oops".utf8))
            var out = "", err = "", closed = false
            for await e in client.events {
                switch e {
                case .stdout(let b): out += String(decoding: b, as: UTF8.self)
                case .stderr(let b): err += String(decoding: b, as: UTF8.self)
                default: break
                }
                if out == "hello" && err == "err:oops" && !closed {
                    closed = true
                    try await client.closeStdin()
                }
            }
            #expect(out == "hello")
            #expect(err == "err:oops")
        }
    }

    @Test(arguments: StreamTransportKind.allCases)
    func portForwardRelaysBothWaysWithHalfClose(_ transport: StreamTransportKind) async throws {
        let listener = try EchoListener()
        defer { listener.stop() }
        try await Self.withServer { server, _ in
            let url = server.url(for: .portForward(PortForwardRequest(podID: "p1", ports: [])))
            let client = try await StreamClient.portForward(url: url, transport: transport, ports: [listener.port])
            try await client.connect(port: listener.port)
            try await client.send(port: listener.port, Array("ping".utf8))
            if transport == .spdy { try await client.closeWrite(port: listener.port) }
            var got = ""
            for await e in client.events {
                if case .portData(_, let b) = e { got += String(decoding: b, as: UTF8.self) }
                if got == "echo:ping" && transport == .webSocket { await client.abort() }
                if case .portClosed = e { break }
            }
            #expect(got == "echo:ping")
            await client.abort()
        }
    }

    /// crictl and kubectl ≥ 1.30 over WebSocket: SPDY tunnelled in binary messages.
    @Test func portForwardThroughTheWebSocketSPDYTunnel() async throws {
        let listener = try EchoListener()
        defer { listener.stop() }
        try await Self.withServer { server, _ in
            let url = server.url(for: .portForward(PortForwardRequest(podID: "p1", ports: [])))
            let client = try await StreamClient.portForward(url: url, transport: .webSocket, tunnel: true)
            #expect(client.negotiated == "SPDY/3.1+portforward.k8s.io")
            for word in ["one", "two"] {
                try await client.connect(port: listener.port)
                try await client.send(port: listener.port, Array(word.utf8))
                try await client.closeWrite(port: listener.port)
                var got = ""
                for await e in client.events {
                    if case .portData(_, let b) = e { got += String(decoding: b, as: UTF8.self) }
                    if case .portClosed = e { break }
                }
                #expect(got == "echo:" + word)
            }
            await client.abort()
        }
    }

    @Test func closedPortReportsAnErrorAndTheSessionGoesOn() async throws {
        let listener = try EchoListener()
        defer { listener.stop() }
        try await Self.withServer { server, _ in
            let url = server.url(for: .portForward(PortForwardRequest(podID: "p1", ports: [])))
            let client = try await StreamClient.portForward(url: url, transport: .spdy)
            try await client.connect(port: 9)
            var iterator = client.events.makeAsyncIterator()
            var error = ""
            while let e = await iterator.next() {
                if case .portError(let port, let text) = e, port == 9 { error = text; break }
            }
            #expect(error.contains("9"))
            try await client.connect(port: listener.port)
            try await client.send(port: listener.port, Array("again".utf8))
            try await client.closeWrite(port: listener.port)
            var got = ""
            while let e = await iterator.next() {
                if case .portData(let p, let b) = e, p == listener.port { got += String(decoding: b, as: UTF8.self) }
                if case .portClosed(let p) = e, p == listener.port { break }
            }
            #expect(got == "echo:again")
            await client.abort()
        }
    }

    @Test func usedExpiredUnknownAndUnnegotiableURLsAreRefused() async throws {
        // Only the expiring URL is short-lived: on a loaded 2-core CI host a first connection has
        // taken longer than a short server-wide lifetime, and the valid URL was refused.
        try await Self.withServer { server, _ in
            let url = server.url(for: Self.exec("true"))
            _ = await (try StreamClient.remoteCommand(url: url, transport: .spdy, streams: .init(stdin: false))).collect()
            await #expect(throws: StreamRefusal.self) {
                try await StreamClient.remoteCommand(url: url, transport: .spdy, streams: .init(stdin: false))
            }
            do {
                _ = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("true")), transport: .spdy,
                                                         streams: .init(stdin: false), protocols: ["v9.channel.k8s.io"])
                Issue.record("an unknown protocol version was accepted")
            } catch let r as StreamRefusal {
                #expect(r.status == 403)
                #expect(r.body.contains("v4.channel.k8s.io"))
            }
            do {
                _ = try await StreamClient.remoteCommand(url: server.baseURL + "/exec/nosuchtoken", transport: .webSocket,
                                                         streams: .init(stdin: false))
                Issue.record("an unknown token was accepted")
            } catch let r as StreamRefusal {
                #expect(r.status == 404)
            }
            let expiring = server.url(for: Self.exec("true"), lifetime: .milliseconds(300))
            let deadline = ContinuousClock.now + .seconds(10)
            while server.tokens.peek(String(expiring.split(separator: "/").last!), kind: "exec") != nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            await #expect(throws: StreamRefusal.self) {
                try await StreamClient.remoteCommand(url: expiring, transport: .spdy, streams: .init(stdin: false))
            }
        }
    }

    @Test func aPlainRequestIsToldToUpgrade() async throws {
        try await Self.withServer { server, _ in
            let url = server.url(for: Self.exec("true"))
            let target = try StreamClientConnection.parse(url)
            let answer = try rawHTTP(host: target.host, port: target.port, "GET \(target.path) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
        }
    }

    @Test func aClientThatGoesAwayLeavesNoProcess() async throws {
        try await Self.withServer { server, backend in
            let client = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("echo started; exec sleep 1000")),
                                                              transport: .spdy, streams: .init(stdin: false))
            for await e in client.events { if case .stdout = e { break } }
            await client.abort()
            let pid = try #require(backend.started.withLock { $0.last })
            let deadline = ContinuousClock.now + .seconds(10)
            while kill(pid, 0) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(kill(pid, 0) == -1, "the command outlived its session")
            while server.connectionCount > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.connectionCount == 0)
        }
    }

    /// Waits until `pid` is gone (killed and reaped), with a deadline.
    static func gone(_ pid: Int32) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return kill(pid, 0) == -1
    }

    @Test func anIdleSessionIsClosedAndItsCommandKilled() async throws {
        // Long enough that the session is set up before it fires even on a loaded machine.
        try await Self.withServer(idle: .seconds(2)) { server, backend in
            let client = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("echo started; exec sleep 1000")),
                                                              transport: .spdy, streams: .init(stdin: false))
            var sawClose = false
            for await e in client.events { if case .closed = e { sawClose = true } }
            #expect(sawClose)
            let pid = try #require(backend.started.withLock { $0.last })
            #expect(try await Self.gone(pid), "the command outlived its idle session")
        }
    }

    @Test func stoppingTheServerEndsEverySession() async throws {
        let backend = FakeStreamingBackend()
        let server = StreamingServer(options: .init(), backend: backend, logger: Logger(label: "test"))
        try await server.start()
        var clients: [StreamClient] = []
        for transport in StreamTransportKind.allCases {
            let c = try await StreamClient.remoteCommand(url: server.url(for: Self.exec("echo started; exec sleep 1000")),
                                                         transport: transport, streams: .init(stdin: false))
            for await e in c.events { if case .stdout = e { break } }
            clients.append(c)
        }
        await server.stop()
        for c in clients { for await _ in c.events {} }
        for pid in backend.started.withLock({ $0 }) { #expect(try await Self.gone(pid)) }
    }

    @Test func fiftyConcurrentSessions() async throws {
        try await Self.withServer { server, _ in
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<50 {
                    let url = server.url(for: Self.exec("echo \(i)"))
                    group.addTask {
                        let c = try await StreamClient.remoteCommand(url: url, transport: i % 2 == 0 ? .spdy : .webSocket,
                                                                     streams: .init(stdin: false))
                        let r = await c.collect()
                        return String(decoding: r.stdout, as: UTF8.self) == "\(i)\n" && r.outcome.succeeded
                    }
                }
                var ok = 0
                for try await r in group where r { ok += 1 }
                return ok
            }
            #expect(results == 50)
        }
    }

    @Test func backendFailureReachesTheClient() async throws {
        try await Self.withServer { server, _ in
            let target = StreamTarget.exec(ExecRequest(containerID: "gone", command: ["true"], tty: false, stdin: false, stdout: true, stderr: true))
            let client = try await StreamClient.remoteCommand(url: server.url(for: target), transport: .spdy, streams: .init(stdin: false))
            let outcome = await client.collect().outcome
            #expect(outcome.message?.contains("container gone not found") == true)
        }
    }
}

/// A loopback TCP server that answers each connection with "echo:" + everything it read, once
/// the client half-closed (or after the first read when it never does).
final class EchoListener: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = in_addr_t(0x7f00_0001).bigEndian
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) == 0 && listen(s, 16) == 0 && getsockname(s, $0, &len) == 0 }
        }
        guard ok else { throw CrispError.internal("cannot listen on loopback") }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
        let fd = s
        startThread(name: "echo-listener") {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { return }
                startThread(name: "echo-conn") {
                    var got: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while true {
                        var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
                        // A client that never half-closes gets its answer after a quiet 200 ms.
                        if poll(&p, 1, got.isEmpty ? -1 : 200) == 0 { break }
                        let n = buffer.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        got += buffer[0..<n]
                    }
                    let answer = Array("echo:".utf8) + got
                    _ = answer.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
                    close(c)
                }
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}

/// One raw HTTP/1.1 exchange; the whole answer up to the server's close.
func rawHTTP(host: String, port: Int, _ request: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    inet_pton(AF_INET, host, &addr.sin_addr)
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw CrispError(.unavailable, "cannot connect to \(host):\(port)") }
    let bytes = Array(request.utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

extension Hasher {
    mutating func combine(bytes: [UInt8]) { bytes.withUnsafeBytes { combine(bytes: $0) } }
}
