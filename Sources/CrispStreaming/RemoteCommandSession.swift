import CrispCore
import Glibc
import Foundation
import Logging
import NIOCore

/// The channels of Kubernetes' remote command protocol (their WebSocket channel numbers).
enum StreamChannel: UInt8, Sendable, CaseIterable {
    case stdin = 0, stdout = 1, stderr = 2, error = 3, resize = 4
}

/// How a remote command session talks to its client: SPDY streams or WebSocket channels. All
/// calls happen on the connection's event loop.
protocol RemoteCommandTransport: AnyObject {
    var streamProtocol: StreamProtocol { get }
    var isWritable: Bool { get }
    func send(_ channel: StreamChannel, _ data: ByteBuffer)
    /// No more data on `channel` (a SPDY FIN; nothing on WebSocket).
    func finish(_ channel: StreamChannel)
    /// Stops or resumes reading from the client (backpressure from a slow stdin).
    func setReading(_ on: Bool)
    /// Ends the session once everything written is sent.
    func close()
}

/// One exec or attach session, independent of the wire protocol. It lives on the connection's
/// event loop; the descriptors it gets from the backend become channels on that same loop.
final class RemoteCommandSession {
    enum Kind {
        case exec(ExecRequest)
        case attach(AttachRequest)
    }

    private let kind: Kind
    private let backend: any StreamingBackend
    private let loop: any EventLoop
    private weak var transport: (any RemoteCommandTransport)?
    private let logger: Logger

    private var started = false
    private var finished = false
    private var clientGone = false
    private var process: StreamedProcess?
    private var attached: AttachedProcess?
    private var exitCode: Int32?
    /// The channel stdin goes to, once the backend has answered.
    private var stdinSink: (any Channel)?
    private var stdinQueue: [ByteBuffer] = []
    private var stdinQueued = 0
    private var stdinWriting = false
    private var stdinEnded = false
    /// Channels that carry output to the client (paused when the client reads slowly).
    private var outputs: [any Channel] = []
    private var openOutputs = 0
    private var resizeBuffer = ByteBuffer()
    private var lastSize: (UInt16, UInt16)?
    private var drainTimer: Scheduled<Void>?

    /// Stdin beyond this many bytes in flight stops reading from the client.
    static let stdinHighWater = 1 << 20
    /// conmon reads its attach socket in 32 KiB messages; stay well below.
    static let attachMessageSize = 8192
    /// After the command exits, how long output may stay open (a background child holding the
    /// pipe) before the session ends anyway.
    static let outputDrainGrace = TimeAmount.seconds(2)

    init(kind: Kind, backend: any StreamingBackend, loop: any EventLoop, transport: any RemoteCommandTransport, logger: Logger) {
        self.kind = kind
        self.backend = backend
        self.loop = loop
        self.transport = transport
        self.logger = logger
    }

    private var tty: Bool {
        switch kind {
        case .exec(let r): r.tty
        case .attach(let r): r.tty
        }
    }

    private var wantsStdout: Bool {
        switch kind {
        case .exec(let r): r.stdout
        case .attach(let r): r.stdout
        }
    }

    private var wantsStderr: Bool {
        switch kind {
        case .exec(let r): r.stderr && !r.tty
        case .attach(let r): r.stderr && !r.tty
        }
    }

    /// The streams the client must open before the session starts (SPDY).
    func expectedChannels(_ p: StreamProtocol) -> Set<StreamChannel> {
        var set: Set<StreamChannel> = [.error]
        let stdin: Bool
        switch kind {
        case .exec(let r): stdin = r.stdin
        case .attach(let r): stdin = r.stdin
        }
        if stdin { set.insert(.stdin) }
        if wantsStdout { set.insert(.stdout) }
        if wantsStderr { set.insert(.stderr) }
        if tty && p.supportsResize { set.insert(.resize) }
        return set
    }

    // MARK: start

    func start() {
        guard !started else { return }
        started = true
        let backend = self.backend
        switch kind {
        case .exec(let r):
            let promise = loop.makePromise(of: StreamedProcess.self)
            promise.completeWithTask { try await backend.exec(r) }
            promise.futureResult.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let p): self.execStarted(p, request: r)
                case .failure(let e): self.fail(e)
                }
            }
        case .attach(let r):
            let promise = loop.makePromise(of: AttachedProcess.self)
            promise.completeWithTask { try await backend.attach(r) }
            promise.futureResult.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let a): self.attachStarted(a, request: r)
                case .failure(let e): self.fail(e)
                }
            }
        }
    }

    private func execStarted(_ p: StreamedProcess, request r: ExecRequest) {
        process = p
        if clientGone {
            p.terminate()
            [p.stdin, p.stdout, p.stderr, p.terminal].compactMap { $0 }.forEach { Glibc.close($0) }
            reap(p, command: r.command)
            return
        }
        if let size = lastSize { p.resize(size.0, size.1) }
        if let terminal = p.terminal {
            openOutputs = 1
            let pump = FDPump(onData: { [weak self] in self?.output(.stdout, $0) }, onEnd: { [weak self] in self?.outputEnded() })
            attachOutput(FDChannels.pipe(input: terminal, output: dup(terminal), on: loop, pump: pump), isStdin: r.stdin)
        } else {
            if let fd = p.stdout {
                openOutputs += 1
                let pump = FDPump(onData: { [weak self] in self?.output(.stdout, $0) }, onEnd: { [weak self] in self?.outputEnded() })
                attachOutput(FDChannels.pipe(input: fd, output: nil, on: loop, pump: pump), isStdin: false)
            }
            if let fd = p.stderr {
                openOutputs += 1
                let pump = FDPump(onData: { [weak self] in self?.output(.stderr, $0) }, onEnd: { [weak self] in self?.outputEnded() })
                attachOutput(FDChannels.pipe(input: fd, output: nil, on: loop, pump: pump), isStdin: false)
            }
            if let fd = p.stdin {
                FDChannels.pipe(input: nil, output: fd, on: loop, pump: nil).assumeIsolated().whenComplete { result in
                    if case .success(let ch) = result { self.stdinReady(ch) }
                }
            }
        }
        reap(p, command: r.command)
    }

    private func reap(_ p: StreamedProcess, command: [String]) {
        let promise = loop.makePromise(of: Int32.self)
        promise.completeWithTask { await p.wait() }
        promise.futureResult.assumeIsolated().whenSuccess { code in
            self.exitCode = code
            if self.openOutputs > 0 {
                self.drainTimer = self.loop.assumeIsolated().scheduleTask(in: Self.outputDrainGrace) {
                    self.outputs.forEach { $0.close(promise: nil) }
                }
            }
            self.finishIfDone()
        }
    }

    private func attachStarted(_ a: AttachedProcess, request r: AttachRequest) {
        attached = a
        if clientGone {
            Glibc.close(a.socket)
            return
        }
        if let size = lastSize { a.resize(size.0, size.1) }
        openOutputs = 1
        let pump = FDPump(onData: { [weak self] in self?.attachOutput($0) }, onEnd: { [weak self] in self?.outputEnded() })
        attachOutput(FDChannels.socket(a.socket, on: loop, pump: pump, messageSize: 64 << 10), isStdin: r.stdin && a.stdin)
    }

    private func attachOutput(_ future: EventLoopFuture<any Channel>, isStdin: Bool) {
        future.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let ch):
                self.outputs.append(ch)
                if self.clientGone || self.finished { ch.close(promise: nil); return }
                if let t = self.transport, !t.isWritable { ch.setOption(.autoRead, value: false).whenFailure { _ in } }
                if isStdin { self.stdinReady(ch) }
            case .failure(let e):
                self.logger.warning("stream descriptor could not be watched", metadata: ["error": "\(e)"])
                self.outputEnded()
            }
        }
    }

    // MARK: output

    private func output(_ channel: StreamChannel, _ data: ByteBuffer) {
        guard let t = transport, !finished else { return }
        guard channel == .stdout ? wantsStdout : wantsStderr else { return }
        t.send(channel, data)
        if !t.isWritable { pauseOutputs(true) }
    }

    /// conmon prefixes each message with the pipe it came from: 2 stdout, 3 stderr.
    private func attachOutput(_ message: ByteBuffer) {
        var m = message
        guard let pipe = m.readInteger(as: UInt8.self) else { return }
        switch pipe {
        case 2: output(.stdout, m)
        case 3: output(tty ? .stdout : .stderr, m)
        default: break
        }
    }

    private func outputEnded() {
        openOutputs = max(0, openOutputs - 1)
        finishIfDone()
    }

    /// The client's side became writable again (or not).
    func writabilityChanged() {
        guard let t = transport else { return }
        pauseOutputs(!t.isWritable)
    }

    private func pauseOutputs(_ pause: Bool) {
        for ch in outputs where ch.isActive { ch.setOption(.autoRead, value: !pause).whenFailure { _ in } }
    }

    // MARK: input

    private func stdinReady(_ channel: any Channel) {
        stdinSink = channel
        if clientGone || finished { channel.close(promise: nil); return }
        writeStdin()
    }

    func stdinData(_ data: ByteBuffer) {
        guard !stdinEnded, !finished else { return }
        var d = data
        // Attach messages stay below conmon's read size; pipes take any size.
        let chunk = isAttach ? Self.attachMessageSize : Int.max
        while d.readableBytes > 0, let part = d.readSlice(length: min(chunk, d.readableBytes)) {
            stdinQueue.append(part)
            stdinQueued += part.readableBytes
        }
        if stdinQueued > Self.stdinHighWater { transport?.setReading(false) }
        writeStdin()
    }

    private var isAttach: Bool {
        if case .attach = kind { return true }
        return false
    }

    func stdinEnd() {
        guard !stdinEnded else { return }
        stdinEnded = true
        writeStdin()
    }

    /// One write at a time: a SOCK_SEQPACKET socket must get each message in its own call (NIO
    /// would gather queued writes into one writev, which makes one oversized message).
    private func writeStdin() {
        guard let sink = stdinSink, !stdinWriting else { return }
        if stdinQueue.isEmpty {
            if stdinEnded { closeStdin(sink) }
            return
        }
        let part = stdinQueue.removeFirst()
        stdinQueued -= part.readableBytes
        stdinWriting = true
        sink.writeAndFlush(part).assumeIsolated().whenComplete { result in
            self.stdinWriting = false
            if case .failure = result {
                self.stdinQueue.removeAll()
                self.stdinQueued = 0
            }
            if self.stdinQueued <= Self.stdinHighWater / 2 { self.transport?.setReading(true) }
            self.writeStdin()
        }
    }

    private func closeStdin(_ sink: any Channel) {
        switch kind {
        case .exec(let r):
            // A terminal has no end of input other than the session's end.
            if !r.tty { sink.close(mode: .output, promise: nil) }
            stdinSink = nil
        case .attach:
            stdinSink = nil
            guard let a = attached else { return }
            if a.stdinOnce && !a.tty {
                // conmon closes the container's stdin; the session ends when the container does.
                sink.close(mode: .output, promise: nil)
            } else {
                // Detach: the container keeps running.
                exitCode = 0
                outputs.forEach { $0.close(promise: nil) }
                finishIfDone(force: true)
            }
        }
    }

    func resizeData(_ data: ByteBuffer) {
        var d = data
        resizeBuffer.writeBuffer(&d)
        // The client sends `{"Width":W,"Height":H}` objects back to back.
        while let end = resizeBuffer.readableBytesView.firstIndex(of: UInt8(ascii: "}")) {
            let length = end - resizeBuffer.readerIndex + 1
            guard let bytes = resizeBuffer.readBytes(length: length) else { break }
            struct Size: Decodable { var Width: UInt16; var Height: UInt16 }
            guard let size = try? JSONDecoder().decode(Size.self, from: Data(bytes)) else { continue }
            lastSize = (size.Width, size.Height)
            process?.resize(size.Width, size.Height)
            attached?.resize(size.Width, size.Height)
        }
        resizeBuffer.discardReadBytes()
    }

    // MARK: end

    /// The client closed the connection (or it broke): nothing of the session may stay behind.
    func transportClosed() {
        guard !clientGone else { return }
        clientGone = true
        drainTimer?.cancel()
        if exitCode == nil { process?.terminate() }
        outputs.forEach { $0.close(promise: nil) }
        stdinSink?.close(promise: nil)
        finished = true
    }

    private func fail(_ error: any Error) {
        let message = (error as? CrispError)?.message ?? "\(error)"
        logger.info("stream session failed", metadata: ["error": "\(message)"])
        guard let t = transport, !finished else { return }
        finished = true
        t.send(.error, ByteBuffer(string: t.streamProtocol.sendsStatusJSON ? ExecStatus.failure(message) : message))
        t.finish(.error)
        t.close()
    }

    private func finishIfDone(force: Bool = false) {
        guard !finished, let t = transport else { return }
        switch kind {
        case .exec(let r):
            guard exitCode != nil, openOutputs == 0 || force else { return }
            finished = true
            drainTimer?.cancel()
            let code = exitCode ?? 0
            if t.streamProtocol.sendsStatusJSON {
                t.send(.error, ByteBuffer(string: code == 0 ? ExecStatus.success() : ExecStatus.exitCode(code, command: r.command)))
            } else if code != 0 {
                t.send(.error, ByteBuffer(string: "command terminated with non-zero exit code: error executing command \(ExecStatus.goList(r.command)), exit code \(code)"))
            }
        case .attach:
            guard openOutputs == 0 || force else { return }
            finished = true
            if t.streamProtocol.sendsStatusJSON { t.send(.error, ByteBuffer(string: ExecStatus.success())) }
        }
        stdinSink?.close(promise: nil)
        for c in [StreamChannel.stdout, .stderr, .error] { t.finish(c) }
        t.close()
    }
}
