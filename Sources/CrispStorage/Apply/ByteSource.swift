import CrispCore
import Glibc
import CrispOS
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

/// The reading side of a `ByteChannel` for the tar extractor's thread. With `computesDigest`,
/// `send` hashes what passes on the producer's side, so the SHA-256 of a layer overlaps with its
/// extraction instead of adding to it.
final class ChannelSource: ByteSource, Sendable {
    let channel: ByteChannel
    let computesDigest: Bool
    /// Only the single producer updates it while it sends; the reader reads it after the channel
    /// ended normally (the channel's lock orders the accesses).
    nonisolated(unsafe) private var hasher = SHA256()
    nonisolated(unsafe) private var sentBytes: Int64 = 0

    init(_ channel: ByteChannel, computesDigest: Bool = true) {
        self.channel = channel
        self.computesDigest = computesDigest
    }

    /// `channel.send`, hashing the chunk first when the source computes the digest.
    func send(_ chunk: [UInt8]) async -> Bool {
        if computesDigest {
            hasher.update(data: chunk)
            sentBytes += Int64(chunk.count)
        }
        return await channel.send(chunk)
    }

    func next() throws -> UnsafeRawBufferPointer? { try channel.readBlocking() }
    func cancel() { channel.cancel() }

    func streamDigest() -> (digest: [UInt8], size: Int64)? {
        guard computesDigest, channel.endedNormally else { return nil }
        return (Array(hasher.finalize()), sentBytes)
    }
}
