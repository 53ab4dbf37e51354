import Dispatch
import Synchronization

/// A bounded hand-over of byte chunks between a producer and a consumer, either of which may be
/// async code or a thread of its own: a download feeding a decompressor thread, a decompressor
/// thread feeding async code, async chunks feeding the tar extractor thread. At most `capacity`
/// bytes wait (a single larger chunk is admitted into an empty queue); a producer waits —
/// suspended (`send`) or blocked (`sendBlocking`) — until the consumer catches up, so memory
/// stays bounded whatever the stream's size.
///
/// One producer and one consumer at a time; `finish` and `cancel` may be called from anywhere.
/// Chunks queued before the end are delivered first; then the producer's error (or
/// `CancellationError` after `cancel`), or the end.
public final class ByteChannel: Sendable {
    private struct State {
        var queue: [[UInt8]] = []
        var head = 0
        var queuedBytes = 0
        var finished = false
        var failure: (any Error)?
        var cancelled = false
        var asyncProducer: CheckedContinuation<Void, Never>?
        var asyncConsumer: CheckedContinuation<Void, Never>?
        var producerBlocked = false
        var consumerBlocked = false

        func admits(_ count: Int, capacity: Int) -> Bool { queuedBytes == 0 || queuedBytes + count <= capacity }
        var readable: Bool { head < queue.count || finished || cancelled }

        /// Wakes whatever consumer waits; returns the async one to resume outside the lock.
        mutating func wakeConsumer(_ sem: DispatchSemaphore) -> CheckedContinuation<Void, Never>? {
            if consumerBlocked { consumerBlocked = false; sem.signal() }
            defer { asyncConsumer = nil }
            return asyncConsumer
        }

        mutating func wakeProducer(_ sem: DispatchSemaphore) -> CheckedContinuation<Void, Never>? {
            if producerBlocked { producerBlocked = false; sem.signal() }
            defer { asyncProducer = nil }
            return asyncProducer
        }
    }

    private let state = Mutex(State())
    private let dataSignal = DispatchSemaphore(value: 0)
    private let spaceSignal = DispatchSemaphore(value: 0)
    public let capacity: Int

    /// The blocking reader's copy of its last chunk (`readBlocking`). Only the one reader thread
    /// touches it, one call at a time.
    nonisolated(unsafe) private var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    public init(capacity: Int = 4 << 20) { self.capacity = capacity }

    deinit { scratch.deallocate() }

    // MARK: producer

    private enum SendStep { case queued(CheckedContinuation<Void, Never>?), stopped, wait }

    private func tryQueue(_ chunk: [UInt8], blocking: Bool) -> SendStep {
        let semaphore = dataSignal
        return state.withLock { s -> SendStep in
            if s.cancelled || s.finished { return .stopped }
            guard s.admits(chunk.count, capacity: capacity) else {
                if blocking { s.producerBlocked = true }
                return .wait
            }
            s.queue.append(chunk)
            s.queuedBytes += chunk.count
            return .queued(s.wakeConsumer(semaphore))
        }
    }

    /// Queues a chunk, suspending while the channel is full. Returns false once the channel was
    /// cancelled or finished (the producer should stop). A cancelled producer task ends the
    /// stream with a `CancellationError`.
    public func send(_ chunk: [UInt8]) async -> Bool {
        if chunk.isEmpty { return !state.withLock { $0.cancelled } }
        while true {
            switch tryQueue(chunk, blocking: false) {
            case .queued(let c): c?.resume(); return true
            case .stopped: return false
            case .wait:
                if Task.isCancelled {
                    finish(error: CancellationError())
                    return false
                }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let now = state.withLock { s -> Bool in
                            if s.cancelled || s.finished || s.admits(chunk.count, capacity: capacity) || Task.isCancelled { return true }
                            s.asyncProducer = c
                            return false
                        }
                        if now { c.resume() }
                    }
                } onCancel: {
                    let c = state.withLock { s in
                        defer { s.asyncProducer = nil }
                        return s.asyncProducer
                    }
                    c?.resume()
                }
            }
        }
    }

    /// Blocking: queues a chunk, blocking the calling thread while the channel is full. Returns
    /// false once the channel was cancelled or finished. Never call from async code.
    public func sendBlocking(_ chunk: [UInt8]) -> Bool {
        if chunk.isEmpty { return !state.withLock { $0.cancelled } }
        while true {
            switch tryQueue(chunk, blocking: true) {
            case .queued(let c): c?.resume(); return true
            case .stopped: return false
            case .wait: spaceSignal.wait()
            }
        }
    }

    /// Ends the stream, with the producer's error if it failed. A failure is kept even when a
    /// normal end follows or came first (a cancelled caller must not see a complete stream).
    public func finish(error: (any Error)? = nil) {
        let (consumer, producer) = state.withLock { s in
            s.finished = true
            if s.failure == nil { s.failure = error }
            return (s.wakeConsumer(dataSignal), s.wakeProducer(spaceSignal))
        }
        consumer?.resume()
        producer?.resume()
    }

    /// Stops both sides: queued chunks are dropped, a waiting producer's send returns false and
    /// the consumer gets a `CancellationError` (unless the producer failed first).
    public func cancel() {
        let (consumer, producer) = state.withLock { s in
            s.cancelled = true
            s.queue.removeAll()
            s.head = 0
            s.queuedBytes = 0
            return (s.wakeConsumer(dataSignal), s.wakeProducer(spaceSignal))
        }
        consumer?.resume()
        producer?.resume()
    }

    /// Whether the producer finished without error and nobody cancelled.
    public var endedNormally: Bool { state.withLock { $0.finished && $0.failure == nil && !$0.cancelled } }

    // MARK: consumer

    private enum NextStep { case chunk([UInt8], CheckedContinuation<Void, Never>?), end, fail(any Error), wait }

    private func tryTake(blocking: Bool) -> NextStep {
        let semaphore = spaceSignal
        return state.withLock { s -> NextStep in
            if s.head < s.queue.count {
                let chunk = s.queue[s.head]
                s.queue[s.head] = []
                s.head += 1
                if s.head > 64 { s.queue.removeFirst(s.head); s.head = 0 }
                s.queuedBytes -= chunk.count
                return .chunk(chunk, s.wakeProducer(semaphore))
            }
            if let f = s.failure { return .fail(f) }
            if s.cancelled { return .fail(CancellationError()) }
            if s.finished { return .end }
            if blocking { s.consumerBlocked = true }
            return .wait
        }
    }

    /// The next chunk, nil at the end, or the producer's error. Cancelling the consuming task
    /// cancels the channel, which stops the producer.
    public func next() async throws -> [UInt8]? {
        while true {
            switch tryTake(blocking: false) {
            case .chunk(let chunk, let producer): producer?.resume(); return chunk
            case .end: return nil
            case .fail(let e): throw e
            case .wait:
                if Task.isCancelled { cancel(); continue }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let now = state.withLock { s -> Bool in
                            if s.readable { return true }
                            s.asyncConsumer = c
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

    /// Blocking: the next chunk, nil at the end, or the producer's error. Never call from async code.
    public func nextBlocking() throws -> [UInt8]? {
        while true {
            switch tryTake(blocking: true) {
            case .chunk(let chunk, let producer): producer?.resume(); return chunk
            case .end: return nil
            case .fail(let e): throw e
            case .wait: dataSignal.wait()
            }
        }
    }

    /// Blocking: `nextBlocking` as memory valid until the following call (what C read callbacks
    /// such as libarchive's want). One reader thread only.
    public func readBlocking() throws -> UnsafeRawBufferPointer? {
        guard let chunk = try nextBlocking() else { return nil }
        if chunk.count > scratch.count {
            scratch.deallocate()
            scratch = .allocate(byteCount: chunk.count, alignment: 16)
        }
        chunk.withUnsafeBytes { scratch.copyMemory(from: $0) }
        return UnsafeRawBufferPointer(rebasing: scratch[0..<chunk.count])
    }

    /// The channel's contents as an async sequence (one iteration at a time).
    public var chunks: Chunks { Chunks(channel: self) }

    public struct Chunks: AsyncSequence, Sendable {
        public typealias Element = [UInt8]
        let channel: ByteChannel
        public struct AsyncIterator: AsyncIteratorProtocol {
            let channel: ByteChannel
            public mutating func next() async throws -> [UInt8]? { try await channel.next() }
        }
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: channel) }
    }
}
