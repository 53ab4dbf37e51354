import IntegrationSupport
import CRIAPI
import CrispOS
import CrispStreaming
import CrispTestSupport
import Foundation
import GRPCCore
import Synchronization
import Testing

/// Exec, Attach and PortForward end to end: URLs from a real crispd, sessions through its
/// streaming server over SPDY/3.1 and WebSocket (crisp's own client, and Python's
/// websocket-client), real conmon/runc containers of busybox, and a CNI pod for port forwarding.
@Suite(.serialized) struct StreamingTests {
    typealias Client = CRI.Client
    typealias Pod = (id: String, config: Runtime_V1_PodSandboxConfig)

    static func skipReason() -> String? {
        if let r = CRI.skipReason() { return r }
        if !["/bin/busybox", "/usr/bin/busybox"].contains(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return "busybox is not installed (apt busybox-static)"
        }
        return nil
    }

    // MARK: helpers

    /// An Exec URL for `cmd` in container `id`, and a session on it.
    static func exec(_ runtime: Client, _ id: String, _ cmd: [String], transport: StreamTransportKind,
                     stdin: Bool = false, tty: Bool = false) async throws -> StreamReader {
        var r = Runtime_V1_ExecRequest()
        r.containerID = id
        r.cmd = cmd
        r.stdin = stdin
        r.stdout = true
        r.stderr = !tty
        r.tty = tty
        let url = try await runtime.exec(r).url
        return StreamReader(try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: stdin, tty: tty)))
    }

    /// Runs `cmd` to the end without stdin.
    static func run(_ runtime: Client, _ id: String, _ cmd: [String], transport: StreamTransportKind) async throws -> StreamReader {
        let s = try await exec(runtime, id, cmd, transport: transport)
        await s.read()
        return s
    }

    static func attach(_ runtime: Client, _ id: String, transport: StreamTransportKind, tty: Bool = false) async throws -> StreamReader {
        var r = Runtime_V1_AttachRequest()
        r.containerID = id
        r.stdin = true
        r.stdout = true
        r.stderr = !tty
        r.tty = tty
        let url = try await runtime.attach(r).url
        return StreamReader(try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: true, tty: tty)))
    }

    static func portForwardURL(_ runtime: Client, _ pod: String, ports: [Int32] = []) async throws -> String {
        var r = Runtime_V1_PortForwardRequest()
        r.podSandboxID = pod
        r.port = ports
        return try await runtime.portForward(r).url
    }

    /// A crispd with busybox, a host-network pod and a `sleep` container in it; the pod is removed
    /// and leaks are checked after `body`, and everything is cleaned up also when it fails.
    static func withContainer(_ name: String, _ body: @Sendable (Client, CRIWorld, Pod, String) async throws -> Void) async throws {
        let world = try await CRI.world()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, name, world: world)
            let id = try await CRI.startContainer(runtime, pod: pod, "main", ["/bin/sleep", "3600"])
            try await body(runtime, world, pod, id)
            try await CRI.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }

    /// Polls `condition` until it holds or `within` passed (for what has no event to wait on).
    static func eventually(within: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + within
        while true {
            if try await condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func rpcCode(_ body: () async throws -> Void) async -> RPCError.Code? {
        do {
            try await body()
            return nil
        } catch let e as RPCError {
            return e.code
        } catch {
            return .unknown
        }
    }

    // MARK: exec

    /// Output, stderr and exit codes over both transports; stdin round trip through `cat`.
    @Test func execOutputExitCodesAndStdinOverSPDYAndWebSocket() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("exec") { runtime, _, _, id in
            for transport in StreamTransportKind.allCases {
                let failing = try await Self.run(runtime, id, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], transport: transport)
                #expect(failing.stdoutText == "out\n", "\(transport): \(failing)")
                #expect(failing.stderrText == "err\n", "\(transport): \(failing)")
                #expect(failing.outcome.exitCode == 3, "\(transport): \(failing)")

                let ok = try await Self.run(runtime, id, ["/bin/true"], transport: transport)
                #expect(ok.reportedSuccess, "\(transport): \(ok)")
                #expect(ok.stdout.isEmpty && ok.stderr.isEmpty)

                let missing = try await Self.run(runtime, id, ["/no/such/command"], transport: transport)
                // runc exits 255 and says why on the command's stderr.
                #expect(missing.outcome.exitCode == 255 && missing.stderrText.contains("/no/such/command"), "\(transport): \(missing)")

                let cat = try await Self.exec(runtime, id, ["/bin/cat"], transport: transport, stdin: true)
                let input = Array("first line\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 70_000) + Array("\nlast\n".utf8)
                try await cat.client.send(stdin: Array(input[..<11]))
                #expect(await cat.read { $0.stdout.count >= 11 }, "\(transport): cat echoes before stdin ends: \(cat)")
                try await cat.client.send(stdin: Array(input[11...]))
                try await cat.client.closeStdin()
                await cat.read()
                #expect(cat.stdout == input, "\(transport): \(cat.stdout.count) of \(input.count) bytes back")
                #expect(cat.reportedSuccess, "\(transport): \(cat)")
            }
        }
    }

    /// A terminal gets the size the client sends first, and follows a resize.
    @Test func execTerminalFollowsResizes() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("tty") { runtime, _, _, id in
            // The pseudo-terminal starts at 80x24; the WebSocket run starts elsewhere so that the
            // first size shows it was applied. runc gives the container's terminal its size only
            // once the command runs (one that asks at once may see 0x0): it waits for a line first.
            let runs: [(StreamTransportKind, (columns: UInt16, rows: UInt16))] = [(.spdy, (80, 24)), (.webSocket, (91, 27))]
            for (transport, first) in runs {
                let s = try await Self.exec(runtime, id, ["/bin/sh", "-c", "echo ready; read x; busybox stty size; read y; busybox stty size"],
                                            transport: transport, stdin: true, tty: true)
                try await s.client.resize(columns: first.columns, rows: first.rows)
                #expect(await s.read { $0.stdoutText.contains("ready") }, "\(transport): \(s)")
                try await s.client.send(stdin: Array("\n".utf8))
                #expect(await s.read { $0.stdoutText.split(whereSeparator: \.isNewline).count >= 2 }, "\(transport): \(s)")
                let firstSize = s.stdoutText.split(whereSeparator: \.isNewline).dropFirst().first.map(String.init)
                #expect(firstSize == "\(first.rows) \(first.columns)", "\(transport): \(s)")
                try await s.client.resize(columns: 100, rows: 30)
                try await s.client.send(stdin: Array("\n".utf8))
                await s.read()
                // The terminal echoes each newline: empty lines between the outputs.
                let lines = s.stdoutText.split(whereSeparator: \.isNewline)
                #expect(lines == ["ready", "\(first.rows) \(first.columns)", "30 100"], "\(transport): \(s)")
                #expect(s.reportedSuccess, "\(transport): \(s)")
                #expect(s.stderr.isEmpty)
            }
        }
    }

    /// A client that goes away mid-exec takes the command with it.
    @Test func abortedExecLeavesNoProcess() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("abort") { runtime, _, _, id in
            let runs: [(StreamTransportKind, tty: Bool)] = [(.spdy, false), (.webSocket, false), (.spdy, true), (.webSocket, true)]
            for (transport, tty) in runs {
                let s = try await Self.exec(runtime, id, ["/bin/sh", "-c", "echo started; exec sleep 1000"], transport: transport,
                                            stdin: tty, tty: tty)
                #expect(await s.read { $0.stdoutText.contains("started") }, "\(transport) tty \(tty): \(s)")
                let running = try await CRI.exec(runtime, id, "ps -o args | grep -c '^sleep 1000' || true").out
                #expect(running == "1", "\(transport) tty \(tty): the exec'd sleep runs before the abort")
                await s.client.abort()
                var left = ""
                let gone = try await Self.eventually {
                    left = try await CRI.exec(runtime, id, "ps -o args | grep -e '^sleep 1000' -e '^\\[sleep\\]' || true").out
                    return left.isEmpty
                }
                #expect(gone, "\(transport) tty \(tty): left in the container after the client went away: \(left)")
            }
        }
    }

    /// Without a terminal the command writes into crispd's own pipes: runc runs detached and is
    /// gone while the command runs, the command is crispd's adopted child, and once the session
    /// ends it is reaped (no zombie) with its status reported.
    @Test func execWithoutTerminalHasCrispdsPipesAndNoRuncInBetween() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("detached") { runtime, world, _, id in
            let crispd = world.crispd.processIdentifier
            func processes() -> [Int32] {
                ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
            }
            func command(_ pid: Int32) -> String {
                (readSmallFile("/proc/\(pid)/cmdline") ?? "").split(separator: "\0").joined(separator: " ")
            }
            func status(_ pid: Int32, _ field: String) -> String? {
                (readSmallFile("/proc/\(pid)/status") ?? "").split(separator: "\n").first { $0.hasPrefix(field + ":") }
                    .map { $0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces) }
            }
            func pipes(_ pid: Int32) -> Set<String> {
                let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
                return Set(fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
                    .filter { $0.hasPrefix("pipe:") })
            }
            for transport in [StreamTransportKind.spdy, .webSocket] {
                let s = try await Self.exec(runtime, id, ["/bin/sh", "-c", "echo started; read line; exit 7"], transport: transport, stdin: true)
                #expect(await s.read { $0.stdoutText.contains("started") }, "\(transport): \(s)")
                let shell = try #require(processes().first { command($0).hasPrefix("/bin/sh -c echo started") }, "\(transport): no command")
                // runc exits right after it started the command, and crispd adopts it then.
                var runcs: [Int32] = []
                let adopted = try await Self.eventually {
                    runcs = processes().filter { status($0, "PPid") == "\(crispd)" && status($0, "Name") == "runc" }
                    return runcs.isEmpty && status(shell, "PPid") == "\(crispd)"
                }
                #expect(adopted, "\(transport): the command's parent is \(status(shell, "PPid") ?? "?"), runc children of crispd: \(runcs)")
                for fd in 0...1 {
                    let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(shell)/fd/\(fd)")
                    #expect(pipes(crispd).contains(link), "\(transport): the command's fd \(fd) (\(link)) is not a pipe crispd holds")
                }
                try await s.client.send(stdin: Array("go\n".utf8))
                await s.read()
                #expect(s.outcome.exitCode == 7, "\(transport): \(s)")
                let reaped = try await Self.eventually { status(shell, "PPid") != "\(crispd)" }
                #expect(reaped, "\(transport): the command \(shell) was not reaped")
            }
        }
    }

    /// 50 sessions at once, half over SPDY and half over WebSocket, each with its own output.
    @Test func fiftyConcurrentExecSessions() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("many") { runtime, _, _, id in
            let results = try await withThrowingTaskGroup(of: (Int, String, Bool, String).self) { group in
                for i in 0..<50 {
                    group.addTask {
                        let s = try await Self.run(runtime, id, ["/bin/echo", "\(i)"], transport: i % 2 == 0 ? .spdy : .webSocket)
                        return (i, s.stdoutText, s.reportedSuccess, "\(s)")
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == 50)
            for (i, out, succeeded, transcript) in results.sorted(by: { $0.0 < $1.0 }) {
                #expect(out == "\(i)\n" && succeeded, "session \(i): \(transcript)")
            }
        }
    }

    /// 100 MiB (25 over WebSocket) of pseudo-random bytes through stdin → cat → stdout, compared
    /// byte for byte as they come back (neither side keeps the whole stream).
    @Test func hundredMegabytesThroughCat() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("bulk") { runtime, _, _, id in
            for transport in StreamTransportKind.allCases {
                // 100 MiB over SPDY; WebSocket masks every byte, which a debug build does slowly.
                let total = transport == .spdy ? 100 << 20 : 25 << 20, chunk = 256 << 10
                let s = try await Self.exec(runtime, id, ["/bin/cat"], transport: transport, stdin: true)
                let check = PatternCheck()
                s.stdoutSink = { check.consume($0) }
                let client = s.client
                let writer = Task {
                    var offset = 0
                    while offset < total {
                        let n = min(chunk, total - offset)
                        try await client.send(stdin: PatternCheck.pattern(at: offset, count: n))
                        offset += n
                    }
                    try await client.closeStdin()
                }
                await s.read(within: .seconds(100))
                writer.cancel()
                let wrote = await writer.result
                #expect((try? wrote.get()) != nil, "\(transport): writing stdin failed: \(wrote)")
                #expect(check.firstMismatch == nil, "\(transport): stdout differs from stdin at byte \(check.firstMismatch ?? -1)")
                #expect(check.received == total, "\(transport): \(check.received) of \(total) bytes came back")
                #expect(s.reportedSuccess, "\(transport): \(s)")
            }
        }
    }

    /// Exec and Attach are checked at the RPC, before any URL is handed out.
    @Test func execAttachAndPortForwardRequestsAreCheckedAtTheRPC() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("checks") { runtime, _, pod, running in
            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = pod.id
            create.sandboxConfig = pod.config
            create.config = CRI.containerConfig("created", ["/bin/true"], logPath: "created.log")
            let created = try await runtime.createContainer(create).containerID
            let exited = try await CRI.startContainer(runtime, pod: pod, "exited", ["/bin/true"])
            #expect(try await CRI.waitExited(runtime, exited).state == .containerExited)

            func exec(_ id: String, cmd: [String] = ["/bin/true"], tty: Bool = false, stderr: Bool = true) async -> RPCError.Code? {
                await Self.rpcCode {
                    var r = Runtime_V1_ExecRequest()
                    r.containerID = id
                    r.cmd = cmd
                    r.stdout = true
                    r.stderr = stderr
                    r.tty = tty
                    _ = try await runtime.exec(r)
                }
            }
            func attach(_ id: String, tty: Bool = false, stderr: Bool = true) async -> RPCError.Code? {
                await Self.rpcCode {
                    var r = Runtime_V1_AttachRequest()
                    r.containerID = id
                    r.stdin = true
                    r.stdout = true
                    r.stderr = stderr
                    r.tty = tty
                    _ = try await runtime.attach(r)
                }
            }
            #expect(await exec(String(repeating: "f", count: 64)) == .notFound)
            #expect(await attach(String(repeating: "f", count: 64)) == .notFound)
            #expect(await exec(created) == .failedPrecondition)
            #expect(await exec(exited) == .failedPrecondition)
            #expect(await attach(exited) == .failedPrecondition)
            #expect(await exec(running, tty: true, stderr: true) == .invalidArgument)
            #expect(await attach(running, tty: true, stderr: true) == .invalidArgument)
            #expect(await exec(running, cmd: []) == .invalidArgument)
            #expect(await exec(running) == nil)
            #expect(await exec(running, tty: true, stderr: false) == nil)
            #expect(await Self.rpcCode { _ = try await Self.portForwardURL(runtime, String(repeating: "e", count: 64)) } == .notFound)
            #expect(await Self.rpcCode { _ = try await Self.portForwardURL(runtime, pod.id, ports: [0]) } == .invalidArgument)
        }
    }

    // MARK: tokens and protocols

    /// Each sub-protocol version over each transport; a URL is good for one session (404 after);
    /// no protocol in common is 403 with both lists.
    @Test func urlsAreSingleUseAndProtocolsAreNegotiated() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("tokens") { runtime, _, _, id in
            // Every version a client may ask for: v4 and v5 report the exit code as a Status,
            // older versions as text.
            for transport in StreamTransportKind.allCases {
                let versions = transport == .spdy ? StreamClient.remoteCommandProtocols[.spdy]! : ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
                for version in versions {
                    var r = Runtime_V1_ExecRequest()
                    r.containerID = id
                    r.cmd = ["/bin/sh", "-c", "echo out; exit 3"]
                    r.stdout = true
                    let url = try await runtime.exec(r).url
                    let s = StreamReader(try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: false, stderr: false),
                                                                              protocols: [version]))
                    await s.read()
                    #expect(s.client.negotiated == version, "\(transport)")
                    #expect(s.stdoutText == "out\n", "\(transport) \(version): \(s)")
                    if version.hasPrefix("v4") || version.hasPrefix("v5") {
                        #expect(s.outcome.exitCode == 3, "\(transport) \(version): \(s)")
                    } else {
                        #expect(s.outcome.message?.hasSuffix("exit code 3") == true, "\(transport) \(version): \(s)")
                    }
                }
            }

            var r = Runtime_V1_ExecRequest()
            r.containerID = id
            r.cmd = ["/bin/true"]
            r.stdout = true
            for transport in StreamTransportKind.allCases {
                let url = try await runtime.exec(r).url
                #expect(url.hasPrefix("http://127.0.0.1:") && url.contains("/exec/"), "\(url)")
                let first = StreamReader(try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: false, stderr: false)))
                await first.read()
                #expect(first.reportedSuccess, "\(transport): \(first)")
                do {
                    _ = try await StreamClient.remoteCommand(url: url, transport: transport, streams: .init(stdin: false, stderr: false))
                    Issue.record("\(transport): a used URL was accepted again")
                } catch let e as StreamRefusal {
                    #expect(e.status == 404, "\(transport): \(e)")
                }

                let fresh = try await runtime.exec(r).url
                do {
                    _ = try await StreamClient.remoteCommand(url: fresh, transport: transport, streams: .init(stdin: false, stderr: false),
                                                             protocols: ["v9.channel.k8s.io"])
                    Issue.record("\(transport): an unknown protocol was accepted")
                } catch let e as StreamRefusal {
                    #expect(e.status == 403, "\(transport): \(e)")
                    let supported = StreamClient.remoteCommandProtocols[transport] ?? []
                    #expect(supported.allSatisfy { e.body.contains($0) }, "\(transport): the refusal lists the versions: \(e.body)")
                    #expect(e.body.contains("v9.channel.k8s.io"), "\(transport): \(e.body)")
                }
            }
        }
    }

    // MARK: attach

    /// A non-tty `sh` started with stdin: commands go in, output and stderr come out; closing
    /// stdin detaches and the container keeps running, ready for the next attach.
    @Test func attachToAShellDetachesWhenStdinCloses() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("attach") { runtime, _, pod, _ in
            let id = try await CRI.startContainer(runtime, pod: pod, "shell", ["/bin/sh"]) { $0.stdin = true }
            for transport in StreamTransportKind.allCases {
                let s = try await Self.attach(runtime, id, transport: transport)
                try await s.client.send(stdin: Array("echo hello-\(transport.rawValue)\necho oops >&2\n".utf8))
                #expect(await s.read { $0.stdoutText.contains("hello-\(transport.rawValue)\n") && $0.stderrText.contains("oops\n") },
                        "\(transport): \(s)")
                try await s.client.closeStdin()
                #expect(await s.read(), "\(transport): closing stdin ends the session: \(s)")
                #expect(s.reportedSuccess, "\(transport): \(s)")
                #expect(s.stdoutText == "hello-\(transport.rawValue)\n", "\(transport): \(s)")
                let status = try await CRI.status(runtime, id)
                #expect(status.state == .containerRunning, "\(transport): the container runs on after a detach")
            }
            // A client that goes away without closing stdin leaves the container as it was.
            let dropped = try await Self.attach(runtime, id, transport: .spdy)
            try await dropped.client.send(stdin: Array("echo before-drop\n".utf8))
            #expect(await dropped.read { $0.stdoutText.contains("before-drop\n") }, "\(dropped)")
            await dropped.client.abort()
            let after = try await Self.attach(runtime, id, transport: .webSocket)
            try await after.client.send(stdin: Array("echo after-drop\n".utf8))
            #expect(await after.read { $0.stdoutText.contains("after-drop\n") }, "\(after)")
            try await after.client.closeStdin()
            #expect(await after.read(), "\(after)")
            #expect(try await CRI.status(runtime, id).state == .containerRunning)
        }
    }

    /// stdin_once: the first attach's end of stdin is the container's, so `cat` ends and so does
    /// the container.
    @Test func attachWithStdinOnceEndsTheContainersInput() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("once") { runtime, _, pod, _ in
            for transport in StreamTransportKind.allCases {
                let id = try await CRI.startContainer(runtime, pod: pod, "once-\(transport.rawValue)", ["/bin/sh", "-c", "cat; echo done"]) {
                    $0.stdin = true
                    $0.stdinOnce = true
                }
                let s = try await Self.attach(runtime, id, transport: transport)
                try await s.client.send(stdin: Array("abc\n".utf8))
                #expect(await s.read { $0.stdoutText.contains("abc\n") }, "\(transport): \(s)")
                try await s.client.closeStdin()
                #expect(await s.read(), "\(transport): the session ends with the container: \(s)")
                #expect(s.stdoutText == "abc\ndone\n", "\(transport): \(s)")
                #expect(s.reportedSuccess, "\(transport): \(s)")
                let status = try await CRI.waitExited(runtime, id)
                #expect(status.state == .containerExited && status.exitCode == 0, "\(transport): \(status.state) \(status.exitCode)")
            }
        }
    }

    /// A tty container's shell: input echoed by the terminal, output, a resize through conmon.
    @Test func attachToATerminal() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        try await Self.withContainer("tty-attach") { runtime, _, pod, _ in
            let id = try await CRI.startContainer(runtime, pod: pod, "tty", ["/bin/sh"]) {
                $0.stdin = true
                $0.tty = true
            }
            for transport in StreamTransportKind.allCases {
                let s = try await Self.attach(runtime, id, transport: transport, tty: true)
                try await s.client.send(stdin: Array("echo $((6*7))\n".utf8))
                // The terminal echoes `echo $((6*7))`; only the shell prints 42.
                #expect(await s.read { $0.stdoutText.contains("42\r\n") }, "\(transport): \(s)")
                let (columns, rows): (UInt16, UInt16) = transport == .spdy ? (90, 20) : (110, 33)
                try await s.client.resize(columns: columns, rows: rows)
                // conmon applies the size from its control FIFO, apart from stdin: ask until it shows.
                var sizes: [String] = []
                let resized = try await Self.eventually {
                    let mark = s.stdout.count
                    try await s.client.send(stdin: Array("busybox stty size\n".utf8))
                    guard await s.read(within: .seconds(10), until: { Self.sizeLine(in: $0.stdout[mark...]) != nil }) else { return false }
                    let size = Self.sizeLine(in: s.stdout[mark...]) ?? ""
                    sizes.append(size)
                    return size == "\(rows) \(columns)"
                }
                #expect(resized, "\(transport): the terminal shows \(sizes), not \(rows) \(columns)")
                try await s.client.closeStdin()
                #expect(await s.read(), "\(transport): closing stdin detaches: \(s)")
                #expect(s.reportedSuccess, "\(transport): \(s)")
                #expect(try await CRI.status(runtime, id).state == .containerRunning)
            }
        }
    }

    /// `ROWS COLS` as stty prints it on a line of its own.
    static func sizeLine(in bytes: ArraySlice<UInt8>) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        // `\r\n` is one Character.
        return text.split(whereSeparator: \.isNewline).map(String.init)
            .first { line in
                let parts = line.split(separator: " ")
                return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
            }
    }

    // MARK: port forwarding

    /// busybox httpd in a pod with its own network namespace (CNI bridge): over SPDY, with a
    /// refused port in between on the same connection, and over WebSocket with two ports.
    @Test func portForwardIntoACNIPod() async throws {
        if let why = PodNetworkTests.skipReason() ?? Self.skipReason() { print("skipped: \(why)"); return }
        let crispd = try CrispdProcess()
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        let n = Int.random(in: 10...250)
        let bridge = "cris\(n)"
        try """
            {"cniVersion": "1.0.0", "name": "crisp-it", "plugins": [
              {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "dataDir": "\(crispd.dir)/ipam", "ranges": [[{"subnet": "10.251.\(n).0/24"}]]}}]}
            """.write(toFile: crispd.networkDir + "/10-it.conflist", atomically: true, encoding: .utf8)
        let world = CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        defer {
            world.cleanup()
            PodNetworkTests.deleteBridge(bridge)
        }
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", "/usr/lib/cni"])
        try await crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "web", world: world) {
                $0.linux.securityContext.namespaceOptions.network = .pod
            }
            _ = try await CRI.startContainer(runtime, pod: pod, "httpd", ["/bin/sh", "-c",
                "mkdir -p /w && echo hello-pf > /w/index.html && busybox seq 1 500000 > /w/big.txt && exec busybox httpd -f -p 8080 -h /w"])
            let get = Array("GET /index.html HTTP/1.0\r\n\r\n".utf8)

            let spdy = StreamReader(try await StreamClient.portForward(url: try await Self.portForwardURL(runtime, pod.id), transport: .spdy))
            // httpd listens a moment after the container started: ask again until it answers.
            var answer = ""
            let ready = try await Self.eventually(within: .seconds(20)) {
                answer = String(decoding: try await spdy.request(port: 8080, get), as: UTF8.self)
                return answer.contains("hello-pf")
            }
            #expect(ready, "no answer from httpd through the port forward: \(answer) \(spdy)")
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(answer)")

            // A port nobody listens on: an error naming it, on the same connection.
            let errorsBefore = spdy.portErrors[9]?.count ?? 0
            _ = try await spdy.request(port: 9, Array("x".utf8))
            #expect(await spdy.read { ($0.portErrors[9]?.count ?? 0) > errorsBefore }, "\(spdy)")
            let refused = spdy.portErrors[9]?.last ?? ""
            #expect(refused.contains("forwarding 9 -> 9") && refused.contains("port 9"), "\(refused)")
            let again = String(decoding: try await spdy.request(port: 8080, get), as: UTF8.self)
            #expect(again.contains("hello-pf"), "the connection still forwards after a refused port: \(again) \(spdy)")
            // 3.4 MB through the same connection.
            let big = (1...500_000).map { "\($0)\n" }.joined()
            let download = try await spdy.request(port: 8080, Array("GET /big.txt HTTP/1.0\r\n\r\n".utf8))
            #expect(Self.body(download) == big, "\(download.count) bytes: \(String(decoding: download.prefix(300), as: UTF8.self))")
            #expect(!spdy.closed)
            await spdy.client.abort()

            let ws = StreamReader(try await StreamClient.portForward(url: try await Self.portForwardURL(runtime, pod.id, ports: [9, 8080]),
                                                                     transport: .webSocket, ports: [9, 8080]))
            try await ws.client.send(port: 8080, Array("GET /big.txt HTTP/1.0\r\n\r\n".utf8))
            #expect(await ws.read(), "the WebSocket session ends once both ports are done: \(ws)")
            #expect(Self.body(ws.portData[8080] ?? []) == big, "\(ws.portData[8080]?.count ?? 0) bytes")
            #expect(ws.portErrors[9]?.first?.contains("port 9") == true, "\(ws)")
            #expect(ws.portErrors[8080] == nil, "\(ws)")

            try await CRI.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }

    /// The body of an HTTP response.
    static func body(_ response: [UInt8]) -> String? {
        let text = String(decoding: response, as: UTF8.self)
        return text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) }
    }

    /// A host-network pod forwards to the host's loopback: a listener of the test's own.
    @Test func portForwardInAHostNetworkPod() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let server = try LineServer()
        defer { server.stop() }
        try await Self.withContainer("hostnet") { runtime, _, pod, _ in
            let spdy = StreamReader(try await StreamClient.portForward(url: try await Self.portForwardURL(runtime, pod.id), transport: .spdy))
            for word in ["ping", "again"] {
                let reply = String(decoding: try await spdy.request(port: server.port, Array("\(word)\n".utf8)), as: UTF8.self)
                #expect(reply == "pong:\(word)\n", "\(spdy)")
            }
            // 1 MiB up; the listener answers only once the client's end of the data stream has
            // reached it as EOF.
            let upload = Array("count\n".utf8) + PatternCheck.pattern(at: 0, count: 1 << 20)
            let counted = String(decoding: try await spdy.request(port: server.port, upload), as: UTF8.self)
            #expect(counted == "count:\(1 << 20)\n", "\(spdy)")
            #expect(spdy.portErrors.isEmpty, "\(spdy)")
            await spdy.client.abort()

            let port = Int32(server.port)
            let ws = StreamReader(try await StreamClient.portForward(url: try await Self.portForwardURL(runtime, pod.id, ports: [port]),
                                                                     transport: .webSocket, ports: [server.port]))
            try await ws.client.send(port: server.port, Array("ws\n".utf8))
            #expect(await ws.read(), "\(ws)")
            #expect(String(decoding: ws.portData[server.port] ?? [], as: UTF8.self) == "pong:ws\n", "\(ws)")
            #expect(ws.portErrors.isEmpty, "\(ws)")
        }
        #expect(server.served == 4)
    }

    // MARK: an outside client

    static let pythonClient = #"""
        import json, sys, websocket
        url = sys.argv[1]
        ws = websocket.create_connection(url, subprotocols=["v5.channel.k8s.io"], timeout=30)
        got = {"protocol": ws.getsubprotocol(), "stdout": "", "stderr": "", "status": None}
        if len(sys.argv) > 2:
            ws.send_binary(b"\x00" + sys.argv[2].encode())
            ws.send_binary(b"\xff\x00")  # v5: close stdin
        status = b""
        while True:
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketConnectionClosedException:
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if not data:
                continue
            channel, payload = data[0], data[1:]
            if channel == 1:
                got["stdout"] += payload.decode()
            elif channel == 2:
                got["stderr"] += payload.decode()
            elif channel == 3:
                status += payload
        if status:
            got["status"] = json.loads(status)
        print(json.dumps(got))
        """#

    /// Python's websocket-client speaks v5.channel.k8s.io to the server: channels, stdin close
    /// and the metav1.Status on the error channel.
    @Test func pythonWebSocketClient() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let python = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python), (try? runCommand([python, "-c", "import websocket"]))?.status == 0 else {
            print("skipped: \(python) has no websocket module (apt python3-websocket)")
            return
        }
        try await Self.withContainer("python") { runtime, world, _, id in
            let script = world.crispd.dir + "/ws_exec.py"
            try Self.pythonClient.write(toFile: script, atomically: true, encoding: .utf8)

            func run(_ cmd: [String], stdin: String? = nil) async throws -> [String: Any] {
                var r = Runtime_V1_ExecRequest()
                r.containerID = id
                r.cmd = cmd
                r.stdin = stdin != nil
                r.stdout = true
                r.stderr = true
                let url = try await runtime.exec(r).url
                let ws = "ws://" + url.dropFirst("http://".count)
                let (status, output) = try runCommand([python, script, ws] + (stdin.map { [$0] } ?? []))
                let last = output.split(separator: "\n").last.map(String.init) ?? ""
                let parsed = (try? JSONSerialization.jsonObject(with: Data(last.utf8))) as? [String: Any]
                #expect(status == 0 && parsed != nil, "python: \(output)")
                return parsed ?? [:]
            }

            let failed = try await run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
            #expect(failed["protocol"] as? String == "v5.channel.k8s.io")
            #expect(failed["stdout"] as? String == "out\n")
            #expect(failed["stderr"] as? String == "err\n")
            let status = failed["status"] as? [String: Any] ?? [:]
            #expect(status["status"] as? String == "Failure", "\(status)")
            #expect(status["reason"] as? String == "NonZeroExitCode", "\(status)")
            let cause = ((status["details"] as? [String: Any])?["causes"] as? [[String: Any]])?.first ?? [:]
            #expect(cause["reason"] as? String == "ExitCode" && cause["message"] as? String == "3", "\(status)")

            let ok = try await run(["/bin/true"])
            #expect((ok["status"] as? [String: Any])?["status"] as? String == "Success", "\(ok)")

            let cat = try await run(["/bin/cat"], stdin: "hello from python\n")
            #expect(cat["stdout"] as? String == "hello from python\n", "\(cat)")
            #expect((cat["status"] as? [String: Any])?["status"] as? String == "Success", "\(cat)")
        }
    }
}

extension StreamingTests {
    /// One streaming connection's events as the test reads them (from one task). Every read has a
    /// deadline: past it, the connection is dropped, which ends the event stream.
    final class StreamReader: CustomStringConvertible {
        let client: StreamClient
        private var iterator: AsyncStream<StreamClientEvent>.Iterator
        private(set) var stdout: [UInt8] = []
        private(set) var stderr: [UInt8] = []
        private(set) var status: String?
        private(set) var closed = false
        private(set) var portData: [Int: [UInt8]] = [:]
        private(set) var portErrors: [Int: [String]] = [:]
        private(set) var portClosed: [Int: Int] = [:]
        private let expired = Box(false)
        /// Set: stdout goes here instead of `stdout` (a large transfer checked as it arrives).
        var stdoutSink: (([UInt8]) -> Void)?

        init(_ client: StreamClient) {
            self.client = client
            iterator = client.events.makeAsyncIterator()
        }

        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        var stderrText: String { String(decoding: stderr, as: UTF8.self) }
        var outcome: StreamOutcome { StreamOutcome(status: status ?? "") }
        /// v4/v5: the server said Success (no status at all would also decode as success).
        var reportedSuccess: Bool { outcome.succeeded && (status ?? "").contains(#""status":"Success""#) }

        var description: String {
            var parts = ["stdout \(stdoutText.debugDescription)", "stderr \(stderrText.debugDescription)",
                         "status \(status?.debugDescription ?? "none")", closed ? "closed" : "open"]
            if !portData.isEmpty { parts.append("ports \(portData.mapValues { String(decoding: $0, as: UTF8.self) })") }
            if !portErrors.isEmpty { parts.append("port errors \(portErrors)") }
            if expired.value { parts.append("TIMED OUT") }
            return parts.joined(separator: ", ")
        }

        /// Reads events until `done` holds (by default: until the connection ends). False when the
        /// connection ended or `within` passed first.
        @discardableResult
        func read(within timeout: Duration = .seconds(30), until done: (StreamReader) -> Bool = { $0.closed }) async -> Bool {
            if done(self) { return true }
            if closed { return false }
            let client = self.client
            let expired = self.expired
            let watchdog = Task {
                do { try await Task.sleep(for: timeout) } catch { return }
                expired.value = true
                await client.abort()
            }
            defer { watchdog.cancel() }
            while let e = await iterator.next() {
                apply(e)
                if done(self) { return true }
            }
            closed = true
            return done(self) && !expired.value
        }

        private func apply(_ e: StreamClientEvent) {
            switch e {
            case .stdout(let b):
                if let sink = stdoutSink { sink(b) } else { stdout += b }
            case .stderr(let b): stderr += b
            case .status(let s): status = s
            case .portData(let port, let b): portData[port, default: []] += b
            case .portError(let port, let text): portErrors[port, default: []].append(text)
            case .portClosed(let port): portClosed[port, default: 0] += 1
            case .closed: closed = true
            }
        }

        /// Port forwarding over SPDY: one connection to `port`, `bytes` sent and the write side
        /// closed; returns what came back until the pod's side closed.
        func request(port: Int, _ bytes: [UInt8]) async throws -> [UInt8] {
            portData[port] = []
            let before = portClosed[port, default: 0]
            try await client.connect(port: port)
            try await client.send(port: port, bytes)
            try await client.closeWrite(port: port)
            await read { $0.portClosed[port, default: 0] > before }
            return portData[port] ?? []
        }
    }

    /// Checks a stream against `pattern` as it arrives: word i of the stream is splitmix64(i),
    /// little endian.
    final class PatternCheck {
        private(set) var received = 0
        private(set) var firstMismatch: Int?

        static func pattern(at offset: Int, count: Int) -> [UInt8] {
            let firstWord = offset / 8, endWord = (offset + count + 7) / 8
            var words = [UInt64](repeating: 0, count: endWord - firstWord)
            words.withUnsafeMutableBufferPointer { w in
                for i in 0..<w.count { w[i] = splitmix(UInt64(firstWord + i)).littleEndian }
            }
            let skip = offset % 8
            return words.withUnsafeBytes { Array($0[skip..<(skip + count)]) }
        }

        static func splitmix(_ i: UInt64) -> UInt64 {
            var z = i &* 0x9E37_79B9_7F4A_7C15 &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        func consume(_ bytes: [UInt8]) {
            if firstMismatch == nil {
                let expected = Self.pattern(at: received, count: bytes.count)
                let same = bytes.withUnsafeBytes { a in expected.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
                if !same, let i = bytes.indices.first(where: { bytes[$0] != expected[$0] }) { firstMismatch = received + i }
            }
            received += bytes.count
        }
    }

    /// A TCP server on 127.0.0.1 (a port the kernel picks) that answers the first line of each
    /// connection with `pong:LINE` and closes it; after a line `count` it reads to EOF and answers
    /// `count:BYTES`. `stop()` shuts the listening socket, which ends the accept thread.
    final class LineServer: Sendable {
        let port: Int
        private let fd: Int32
        private let finished = ExitBox()
        private let count = Box(0)
        var served: Int { count.value }

        init() throws {
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard listener >= 0 else { throw TestFailure("socket: errno \(errno)") }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let rc = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
                    guard bind(listener, p, len) == 0, listen(listener, 16) == 0 else { return -1 }
                    return getsockname(listener, p, &len)
                }
            }
            guard rc == 0 else {
                close(listener)
                throw TestFailure("cannot listen on 127.0.0.1: errno \(errno)")
            }
            fd = listener
            port = Int(UInt16(bigEndian: addr.sin_port))
            let (finished, count) = (finished, count)
            Thread { Self.serve(listener, finished, count) }.start()
        }

        private static func serve(_ fd: Int32, _ finished: ExitBox, _ count: Box<Int>) {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 {
                    if errno == EINTR { continue }
                    break
                }
                var line: [UInt8] = []
                var byte: UInt8 = 0
                while read(c, &byte, 1) == 1 {
                    line.append(byte)
                    if byte == UInt8(ascii: "\n") { break }
                }
                var reply = Array("pong:".utf8) + line
                if line == Array("count\n".utf8) {
                    var total = 0
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = read(c, &buffer, buffer.count)
                        if n <= 0 { break }
                        total += n
                    }
                    reply = Array("count:\(total)\n".utf8)
                }
                _ = reply.withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
                close(c)
                count.value += 1
            }
            close(fd)
            finished.set(0)
        }

        func stop() {
            shutdown(fd, Int32(SHUT_RDWR))
            _ = finished.wait(seconds: 10)
        }
    }

    /// A value behind a lock, shared between tasks and threads.
    final class Box<T: Sendable>: Sendable {
        private let m: Mutex<T>
        init(_ value: T) { m = Mutex(value) }
        var value: T {
            get { m.withLock { $0 } }
            set { m.withLock { $0 = newValue } }
        }
    }
}
