import NIOCore

extension ChannelHandler {
    /// Calls `closed` once the channel is closed, even when it closed before this handler was
    /// added: a handler installed by an HTTP upgrade can arrive after a fast peer already hung up,
    /// and then never sees channelInactive. The call comes on a later loop tick, after the bytes
    /// buffered during the upgrade have been handed on.
    static func watchClose(_ context: ChannelHandlerContext, _ closed: @escaping () -> Void) {
        let loop = context.eventLoop
        let bound = NIOLoopBound(closed, eventLoop: loop)
        context.channel.closeFuture.whenComplete { _ in loop.execute { bound.value() } }
    }
}
