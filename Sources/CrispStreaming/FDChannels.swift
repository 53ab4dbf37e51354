import Glibc
import NIOCore
import NIOPosix

/// Reads one descriptor of a session (a pipe, the terminal, a socket) and hands each chunk on;
/// reports the end once, whether it came as EOF, an error (EIO from a terminal whose last user
/// left) or a close.
final class FDPump: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let onData: (ByteBuffer) -> Void
    let onEnd: () -> Void
    private var ended = false

    init(onData: @escaping (ByteBuffer) -> Void, onEnd: @escaping () -> Void) {
        self.onData = onData
        self.onEnd = onEnd
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onData(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { end() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end()
        context.close(promise: nil)
    }

    private func end() {
        guard !ended else { return }
        ended = true
        onEnd()
    }
}

/// Read and write sizes of a session's channels. NIO's defaults (reads of at most 64 KiB, a
/// connection unwritable past 64 KiB queued) make a bulk stream (`cat` of a large file, `kubectl
/// cp`) take a read, a frame, a pause and a resume per 64 KiB; reads grow to 1 MiB while data
/// keeps coming, and shrink again when it does not.
enum StreamBuffers {
    static let receive = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 4096, maximum: 1 << 20)
    static let waterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 << 10, high: 1 << 20)
}

/// Wraps descriptors handed over by the backend into channels on the session's event loop, so
/// that a session and all its descriptors run on one thread without locks. The channels own the
/// descriptors from then on.
enum FDChannels {
    /// Reading starts only once the pump is in place (autoRead off until then), so no byte is
    /// read before there is someone to take it.
    static func pipe(input: Int32?, output: Int32?, on loop: any EventLoop, pump: FDPump?) -> EventLoopFuture<any Channel> {
        let bound = pump.map { NIOLoopBound($0, eventLoop: loop) }
        let bootstrap = NIOPipeBootstrap(group: loop)
            .channelOption(.autoRead, value: false)
            .channelOption(.recvAllocator, value: StreamBuffers.receive)
            .channelOption(.writeBufferWaterMark, value: StreamBuffers.waterMark)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let bound { try channel.pipeline.syncOperations.addHandler(bound.value) }
                }
            }
        let future: EventLoopFuture<any Channel>
        switch (input, output) {
        case let (i?, o?): future = bootstrap.takingOwnershipOfDescriptors(input: i, output: o)
        case let (i?, nil): future = bootstrap.takingOwnershipOfDescriptor(input: i)
        case let (nil, o?): future = bootstrap.takingOwnershipOfDescriptor(output: o)
        case (nil, nil): return loop.makeFailedFuture(ChannelError.inputClosed)
        }
        return future.flatMapErrorThrowing { error in
            [input, output].compactMap { $0 }.forEach { close($0) }
            throw error
        }.map { channel in
            if pump != nil { channel.setOption(.autoRead, value: true).whenFailure { _ in channel.close(promise: nil) } }
            return channel
        }
    }

    /// A connected socket. `messageSize`: the largest message of a SOCK_SEQPACKET socket, read
    /// whole in one call (a smaller buffer would cut the message and lose the rest).
    static func socket(_ fd: Int32, on loop: any EventLoop, pump: FDPump, messageSize: Int? = nil) -> EventLoopFuture<any Channel> {
        let bound = NIOLoopBound(pump, eventLoop: loop)
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.autoRead, value: false)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
        if let messageSize {
            bootstrap = bootstrap.channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: messageSize))
        }
        // Once NIO has made its channel it closes the socket on any later failure itself.
        return bootstrap.withConnectedSocket(fd).map { channel in
            channel.setOption(.autoRead, value: true).whenFailure { _ in channel.close(promise: nil) }
            return channel
        }
    }
}
