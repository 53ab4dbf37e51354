import CrispCore
import Glibc
import Synchronization
import Dispatch
import Crypto

/// A synchronous, pull-based source of bytes for the tar reader, which runs on its own thread.
/// `next()` returns the next chunk (valid until the following call) or nil at the end.
protocol ByteSource: AnyObject {
    func next() throws -> UnsafeRawBufferPointer?
    /// Tells a producer on the other side to stop (the reader failed).
    func cancel()
    /// Whether the source hashes what it delivers itself (off the extracting thread); if not,
    /// the reader hashes as it reads.
    var computesDigest: Bool { get }
    /// SHA-256 and length of everything delivered, for a source that `computesDigest`; nil when
    /// the stream did not end normally. Asked only after `next()` returned nil.
    func streamDigest() -> (digest: [UInt8], size: Int64)?
}

extension ByteSource {
    var computesDigest: Bool { false }
    func streamDigest() -> (digest: [UInt8], size: Int64)? { nil }
}

/// Reads a file descriptor in 1 MiB blocks; the caller keeps ownership of the fd.
final class FileDescriptorSource: ByteSource {
    private let fd: Int32
    private let buffer: UnsafeMutableRawBufferPointer

    init(fd: Int32) {
        self.fd = fd
        self.buffer = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit { buffer.deallocate() }

    func next() throws -> UnsafeRawBufferPointer? {
        while true {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemCallError("read", "layer stream fd \(fd)", errno: errno)
            }
            if n == 0 { return nil }
            return UnsafeRawBufferPointer(rebasing: buffer[0..<n])
        }
    }

    func cancel() {}
}

/// A bounded hand-over from an async producer (a download, or decompressed chunks) to a
/// synchronous reader on its own thread (the tar extractor here; CrispImage's decompressor).
/// At most `capacity` bytes wait in the queue; the producer suspends (without blocking a thread
/// of the cooperative pool) until the reader catches up, so memory stays bounded whatever the
/// layer size.
///
/// One producer (`send`, `finish`) and one reader (`next`) at a time; `cancel` and `finish` may
/// be called from anywhere.
public final class ChunkChannel: ByteSource, Sendable {
    private struct State {
        var queue: [[UInt8]] = []
        var head = 0
        var queuedBytes = 0
        var finished = false
        var failure: (any Error & Sendable)?
        var cancelled = false
        var waitingProducer: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    let capacity: Int
    /// Whether `send` hashes what passes (for `streamDigest`); a reader that does not need the
    /// digest saves the CPU.
    let computesDigest: Bool

    /// The reader's copy of the chunk it was handed last (valid until its next call). Only the
    /// reader thread touches it, one call at a time, so no lock is needed.
    nonisolated(unsafe) private var scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)

    /// The producer hashes what it sends, on its own thread, so the SHA-256 of a layer overlaps
    /// with its extraction instead of adding to it. Only the single producer touches these
    /// while it sends; the reader reads them after it saw `finished` under the lock (which
    /// orders the accesses).
    nonisolated(unsafe) private var hasher = SHA256()
    nonisolated(unsafe) private var sentBytes: Int64 = 0

    public init(capacity: Int = 4 << 20, computesDigest: Bool = true) {
        self.capacity = capacity
        self.computesDigest = computesDigest
    }

    func streamDigest() -> (digest: [UInt8], size: Int64)? {
        let finishedCleanly = state.withLock { $0.finished && $0.failure == nil && !$0.cancelled }
        guard finishedCleanly, computesDigest else { return nil }
        return (Array(hasher.finalize()), sentBytes)
    }

    deinit { scratch.deallocate() }

    /// Adds a chunk, suspending while the queue is full. Returns false when the reader has
    /// stopped (the producer should stop too).
    public func send(_ chunk: [UInt8]) async -> Bool {
        if chunk.isEmpty { return !state.withLock { $0.cancelled } }
        if computesDigest {
            hasher.update(data: chunk)
            sentBytes += Int64(chunk.count)
        }
        let accepted = state.withLock { s -> Bool in
            if s.cancelled { return false }
            s.queue.append(chunk)
            s.queuedBytes += chunk.count
            return true
        }
        guard accepted else { return false }
        available.signal()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if s.cancelled || s.queuedBytes <= capacity { return true }
                s.waitingProducer = c
                return false
            }
            if resumeNow { c.resume() }
        }
        return !state.withLock { $0.cancelled }
    }

    /// Ends the stream, with the producer's error if it failed.
    public func finish(error: (any Error & Sendable)? = nil) {
        state.withLock { s in
            s.finished = true
            if s.failure == nil { s.failure = error }  // a cancellation is not undone by a later normal end
        }
        available.signal()
    }

    /// Stops both sides: queued chunks are dropped, a suspended producer resumes (its `send`
    /// returns false) and a reader waiting in `next` wakes up with a `CancellationError`.
    public func cancel() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.cancelled = true
            s.queue.removeAll()
            s.head = 0
            s.queuedBytes = 0
            defer { s.waitingProducer = nil }
            return s.waitingProducer
        }
        waiter?.resume()
        available.signal()
    }

    /// Blocking: the next chunk (valid until the following call), nil at the end, or the
    /// producer's error (`CancellationError` after `cancel`). Call from a thread of its own,
    /// never from async code.
    public func next() throws -> UnsafeRawBufferPointer? {
        while true {
            enum Step { case chunk([UInt8], CheckedContinuation<Void, Never>?), end, fail(any Error), wait }
            let step = state.withLock { s -> Step in
                if s.head < s.queue.count {
                    let chunk = s.queue[s.head]
                    s.queue[s.head] = []
                    s.head += 1
                    if s.head > 64 { s.queue.removeFirst(s.head); s.head = 0 }
                    s.queuedBytes -= chunk.count
                    var waiter: CheckedContinuation<Void, Never>?
                    if s.queuedBytes <= capacity { waiter = s.waitingProducer; s.waitingProducer = nil }
                    return .chunk(chunk, waiter)
                }
                if let f = s.failure { return .fail(f) }
                // A cancelled stream must never pass for a complete one (an uncompressed blob
                // cut short would otherwise end "normally" at the decompressor).
                if s.cancelled { return .fail(CancellationError()) }
                if s.finished { return .end }
                return .wait
            }
            switch step {
            case .chunk(let chunk, let waiter):
                waiter?.resume()
                if chunk.count > scratch.count {
                    scratch.deallocate()
                    scratch = .allocate(byteCount: chunk.count, alignment: 16)
                }
                chunk.withUnsafeBytes { scratch.copyMemory(from: $0) }
                return UnsafeRawBufferPointer(rebasing: scratch[0..<chunk.count])
            case .end: return nil
            case .fail(let e): throw e
            case .wait: available.wait()
            }
        }
    }
}
