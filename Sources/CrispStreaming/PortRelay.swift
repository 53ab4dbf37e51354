import CrispCore
import Glibc
import Logging
import NIOCore

/// One forwarded connection: a TCP connection to a port of the pod, relayed both ways with the
/// client's data stream (half-close passed on in both directions). Lives on the connection's
/// event loop.
final class PortRelay {
    struct Sink {
        var send: (ByteBuffer) -> Void
        /// The pod's side closed: no more data to the client.
        var finish: () -> Void
        var error: (String) -> Void
        var isWritable: () -> Bool
    }

    let podID: String
    let port: Int
    private let backend: any StreamingBackend
    private let loop: any EventLoop
    private let sink: Sink
    private let logger: Logger
    private var socket: (any Channel)?
    private var pending: [ByteBuffer] = []
    private var clientEnded = false
    private var closed = false
    private var ended = false

    init(podID: String, port: Int, backend: any StreamingBackend, loop: any EventLoop, sink: Sink, logger: Logger) {
        self.podID = podID
        self.port = port
        self.backend = backend
        self.loop = loop
        self.sink = sink
        self.logger = logger
    }

    func start() {
        let (backend, podID, port) = (self.backend, self.podID, self.port)
        let promise = loop.makePromise(of: Int32.self)
        promise.completeWithTask { try await backend.dial(podID: podID, port: port) }
        promise.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let fd):
                if self.closed { Glibc.close(fd); return }
                let pump = FDPump(onData: { [weak self] in self?.fromPod($0) }, onEnd: { [weak self] in self?.podEnded() })
                FDChannels.socket(fd, on: self.loop, pump: pump).assumeIsolated().whenComplete { r in
                    switch r {
                    case .success(let ch): self.connected(ch)
                    case .failure(let e): self.failed("\(e)")
                    }
                }
            case .failure(let e):
                self.failed((e as? CrispError)?.message ?? "\(e)")
            }
        }
    }

    private func connected(_ ch: any Channel) {
        socket = ch
        if closed { ch.close(promise: nil); return }
        for p in pending { ch.write(p, promise: nil) }
        pending.removeAll()
        ch.flush()
        if clientEnded { ch.close(mode: .output, promise: nil) }
        if !sink.isWritable() { ch.setOption(.autoRead, value: false).whenFailure { _ in } }
    }

    private func failed(_ message: String) {
        // The wording client-go's port forwarder prints.
        sink.error("an error occurred forwarding \(port) -> \(port): error forwarding port \(port) to pod \(podID): \(message)")
        podEnded()
    }

    private func fromPod(_ data: ByteBuffer) {
        guard !closed else { return }
        sink.send(data)
        if !sink.isWritable() { socket?.setOption(.autoRead, value: false).whenFailure { _ in } }
    }

    private func podEnded() {
        guard !ended else { return }
        ended = true
        sink.finish()
    }

    func clientData(_ data: ByteBuffer) {
        guard !closed else { return }
        if let s = socket { s.writeAndFlush(data, promise: nil) } else { pending.append(data) }
    }

    /// The client half-closed its data stream: pass the end of input on to the pod's side.
    func clientEnd() {
        clientEnded = true
        socket?.close(mode: .output, promise: nil)
    }

    func writabilityChanged() {
        socket?.setOption(.autoRead, value: sink.isWritable()).whenFailure { _ in }
    }

    /// The client reset the stream or went away.
    func close() {
        guard !closed else { return }
        closed = true
        ended = true
        socket?.close(promise: nil)
    }
}
