import Dispatch
import Synchronization

/// Hands byte chunks from a blocking producer thread (the decompressor) to async code (storage's
/// chunk sequence). `send` blocks the producer thread while `capacity` bytes wait. The other
/// direction (a download feeding the decompressor thread) is CrispStorage's `ChunkChannel`.
final class ThreadToAsyncChannel: Sendable {
    private struct State {
        var queue: [[UInt8]] = []
        var head = 0
        var queuedBytes = 0
        var finished = false
        var failure: (any Error & Sendable)?
        var cancelled = false
        var producerWaiting = false
        var consumer: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let space = DispatchSemaphore(value: 0)
    private let capacity: Int

    init(capacity: Int = 2 << 20) { self.capacity = capacity }

    /// Blocking: queues a chunk; false once the consumer has cancelled.
    func send(_ chunk: [UInt8]) -> Bool {
        while true {
            enum Step { case queued(CheckedContinuation<Void, Never>?), cancelled, wait }
            let step = state.withLock { s -> Step in
                if s.cancelled { return .cancelled }
                if s.queuedBytes > 0 && s.queuedBytes + chunk.count > capacity {
                    s.producerWaiting = true
                    return .wait
                }
                s.queue.append(chunk)
                s.queuedBytes += chunk.count
                defer { s.consumer = nil }
                return .queued(s.consumer)
            }
            switch step {
            case .queued(let c): c?.resume(); return true
            case .cancelled: return false
            case .wait: space.wait()
            }
        }
    }

    func finish(error: (any Error & Sendable)? = nil) {
        let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if !s.finished {
                s.finished = true
                s.failure = error
            }
            defer { s.consumer = nil }
            return s.consumer
        }
        c?.resume()
    }

    func cancel() {
        let (c, wake) = state.withLock { s -> (CheckedContinuation<Void, Never>?, Bool) in
            s.cancelled = true
            s.queue.removeAll()
            s.head = 0
            s.queuedBytes = 0
            defer { s.consumer = nil; s.producerWaiting = false }
            return (s.consumer, s.producerWaiting)
        }
        c?.resume()
        if wake { space.signal() }
    }

    /// The next chunk, nil at the end, or the producer's error. One consumer at a time.
    func next() async throws -> [UInt8]? {
        while true {
            enum Step { case chunk([UInt8], Bool), end, fail(any Error), wait }
            let step = state.withLock { s -> Step in
                if s.head < s.queue.count {
                    let chunk = s.queue[s.head]
                    s.queue[s.head] = []
                    s.head += 1
                    if s.head > 64 { s.queue.removeFirst(s.head); s.head = 0 }
                    s.queuedBytes -= chunk.count
                    let wake = s.producerWaiting
                    s.producerWaiting = false
                    return .chunk(chunk, wake)
                }
                if s.cancelled { return .fail(CancellationError()) }
                if let f = s.failure { return .fail(f) }
                if s.finished { return .end }
                return .wait
            }
            switch step {
            case .chunk(let c, let wake):
                if wake { space.signal() }
                return c
            case .end: return nil
            case .fail(let e): throw e
            case .wait:
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let now = state.withLock { s -> Bool in
                            if s.head < s.queue.count || s.finished || s.cancelled { return true }
                            s.consumer = c
                            return false
                        }
                        if now { c.resume() }
                    }
                } onCancel: {
                    self.cancel()
                }
            }
        }
    }

    /// The channel's contents as an async sequence, for `Storage.applyLayer(_:chunks:)`.
    var chunks: Chunks { Chunks(channel: self) }

    struct Chunks: AsyncSequence, Sendable {
        typealias Element = [UInt8]
        let channel: ThreadToAsyncChannel
        struct AsyncIterator: AsyncIteratorProtocol {
            let channel: ThreadToAsyncChannel
            mutating func next() async throws -> [UInt8]? { try await channel.next() }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: channel) }
    }
}
