import ArgumentParser
import CRIAPI
import CrispOS
import CrispStreaming
import Dispatch
import Foundation
import Glibc

/// exec, attach and port-forward: ask crispd for a streaming URL, then speak SPDY or WebSocket
/// to it with crisp's own client.
extension Crispctl {
    struct StreamOptions: ParsableArguments {
        @Option(name: .customLong("transport"), help: "spdy or websocket.") var protocolName: TransportArgument = .spdy
        var transport: StreamTransportKind { protocolName == .spdy ? .spdy : .webSocket }
    }

    enum TransportArgument: String, ExpressibleByArgument {
        case spdy, websocket
    }

    struct Exec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a command in a running container.")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var stream: StreamOptions
        @Flag(name: .shortAndLong, help: "Pass stdin to the command.") var interactive = false
        @Flag(name: .shortAndLong, help: "Allocate a terminal.") var tty = false
        @Argument(help: "Container id (or unique prefix).") var container: String
        @Argument(parsing: .captureForPassthrough, help: "The command, after --.") var command: [String] = []

        func run() async throws {
            let cmd = command.first == "--" ? Array(command.dropFirst()) : command
            guard !cmd.isEmpty else { throw ValidationError("give the command after --") }
            var r = Runtime_V1_ExecRequest()
            r.containerID = container
            r.cmd = cmd
            r.tty = tty
            r.stdin = interactive
            r.stdout = true
            r.stderr = !tty
            let url = try await endpoint.runtime { [r] in try await $0.exec(r).url }
            let code = try await Terminal.session(url: url, transport: stream.transport, stdin: interactive, tty: tty)
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Attach to a running container's main process.")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var stream: StreamOptions
        @Flag(name: .shortAndLong, help: "Pass stdin to the container.") var interactive = false
        @Flag(name: .shortAndLong, help: "The container has a terminal.") var tty = false
        @Argument(help: "Container id (or unique prefix).") var container: String

        func run() async throws {
            var r = Runtime_V1_AttachRequest()
            r.containerID = container
            r.tty = tty
            r.stdin = interactive
            r.stdout = true
            r.stderr = !tty
            let url = try await endpoint.runtime { [r] in try await $0.attach(r).url }
            let code = try await Terminal.session(url: url, transport: stream.transport, stdin: interactive, tty: tty)
            if code != 0 { throw ExitCode(code) }
        }
    }

    struct PortForward: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "port-forward",
                                                        abstract: "Forward local ports to a pod's ports (LOCAL:REMOTE).")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var stream: StreamOptions
        @Option(help: "Local address to listen on.") var address = "127.0.0.1"
        @Argument(help: "Pod sandbox id (or unique prefix).") var pod: String
        @Argument(help: "LOCAL:REMOTE port pairs.") var ports: [String]

        func run() async throws {
            let pairs = try ports.map { spec -> (Int, Int) in
                let parts = spec.split(separator: ":").map { Int($0) }
                guard parts.count == 2, let l = parts[0], let r = parts[1] else { throw ValidationError("\(spec) is not LOCAL:REMOTE") }
                return (l, r)
            }
            var r = Runtime_V1_PortForwardRequest()
            r.podSandboxID = pod
            r.port = pairs.map { Int32($0.1) }
            let request = r
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (local, remote) in pairs {
                    let listener = try LocalListener(address: address, port: local)
                    print("Forwarding from \(address):\(local) -> \(remote)")
                    group.addTask {
                        while let conn = await listener.accept() {
                            Task {
                                do {
                                    let url = try await endpoint.runtime { try await $0.portForward(request).url }
                                    try await Forwarder.relay(socket: conn, url: url, port: remote, transport: stream.transport)
                                } catch {
                                    FileHandle.standardError.write(Data("port-forward \(local) -> \(remote): \(error)\n".utf8))
                                    close(conn)
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

/// The local terminal during exec and attach: raw mode while the session runs, window size
/// changes (SIGWINCH) passed on as resizes.
enum Terminal {
    static func session(url: String, transport: StreamTransportKind, stdin: Bool, tty: Bool) async throws -> Int32 {
        let client = try await StreamClient.remoteCommand(url: url, transport: transport,
                                                          streams: .init(stdin: stdin, stdout: true, stderr: !tty, tty: tty),
                                                          output: { isStderr, bytes in
                                                              // A closed stdout ends nothing here: the session's end does.
                                                              try? writeAll(isStderr ? 2 : 1, bytes, path: isStderr ? "stderr" : "stdout")
                                                          })
        var saved = termios()
        let raw = tty && isatty(0) == 1 && tcgetattr(0, &saved) == 0
        if raw {
            var t = saved
            cfmakeraw(&t)
            tcsetattr(0, TCSANOW, &t)
        }
        defer { if raw { tcsetattr(0, TCSANOW, &saved) } }
        var winch: (any DispatchSourceSignal)?
        if tty {
            let send: @Sendable () -> Void = {
                if let size = PseudoTerminal.windowSize(1) ?? PseudoTerminal.windowSize(0) {
                    Task { try? await client.resize(columns: size.columns, rows: size.rows) }
                }
            }
            signal(SIGWINCH, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGWINCH)
            source.setEventHandler(handler: send)
            source.resume()
            winch = source
            send()
        }
        defer { winch?.cancel() }
        if stdin {
            // A piped stdin is read in large pieces: each piece is one message and one hop to the
            // client's event loop, and a pipe hands out at most what it holds (64 KiB by default).
            enlargePipe(0, to: 1 << 20)
            startThread(name: "crispctl-stdin") {
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    let chunk = n > 0 ? Array(buffer[0..<n]) : nil
                    let done = DispatchSemaphore(value: 0)
                    Task {
                        if let chunk { try? await client.send(stdin: chunk) } else { try? await client.closeStdin() }
                        done.signal()
                    }
                    done.wait()
                    if chunk == nil { return }
                }
            }
        }
        var status = ""
        for await e in client.events {
            switch e {
            case .status(let s): status = s
            default: break
            }
        }
        let outcome = StreamOutcome(status: status)
        if let message = outcome.message {
            if raw { tcsetattr(0, TCSANOW, &saved) }
            FileHandle.standardError.write(Data("\(message)\n".utf8))
            return 1
        }
        return outcome.exitCode ?? 0
    }
}

/// A listening TCP socket for port-forward; `accept` runs on a thread of its own.
final class LocalListener: Sendable {
    let fd: Int32

    init(address: String, port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, address, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0, listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw ValidationError("cannot listen on \(address):\(port): \(String(cString: strerror(e)))")
        }
    }

    func accept() async -> Int32? {
        let fd = self.fd
        return await runOnThread(name: "crispctl-accept") { () -> Int32? in
            let c = Glibc.accept(fd, nil, nil)
            return c >= 0 ? c : nil
        }
    }
}

/// One local connection relayed through a port-forward session.
enum Forwarder {
    static func relay(socket conn: Int32, url: String, port: Int, transport: StreamTransportKind) async throws {
        let client = try await StreamClient.portForward(url: url, transport: transport, ports: [port])
        try await client.connect(port: port)
        startThread(name: "crispctl-forward") {
            var buffer = [UInt8](repeating: 0, count: 32 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(conn, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                let chunk = n > 0 ? Array(buffer[0..<n]) : nil
                let done = DispatchSemaphore(value: 0)
                Task {
                    if let chunk { try? await client.send(port: port, chunk) } else { try? await client.closeWrite(port: port) }
                    done.signal()
                }
                done.wait()
                if chunk == nil { return }
            }
        }
        loop: for await e in client.events {
            switch e {
            case .portData(_, let b):
                do { try writeAll(conn, b, path: "connection") } catch { break loop }
            case .portError(_, let text): FileHandle.standardError.write(Data("\(text)\n".utf8))
            case .portClosed: break loop
            default: break
            }
        }
        shutdown(conn, Int32(SHUT_RDWR))
        close(conn)
        await client.abort()
    }
}
