public import CrispCore
import CrispOS
import CArchive
import Crypto
import Glibc

/// How whiteouts in a layer tar (`.wh.NAME`, `.wh..wh..opq`) are written to disk.
public enum WhiteoutFormat: Sendable {
    /// overlayfs: a 0/0 character device for a removed name, `trusted.overlay.opaque=y` on an
    /// opaque directory. The layer directory holds only this layer's changes.
    case overlay
    /// The layer directory is a full copy of its parent (vfs, btrfs): whiteouts delete the names
    /// from the copy and nothing marks them.
    case remove
}

/// Where and how a layer is applied.
public struct ApplyTarget: Sendable {
    /// The directory the layer is written into; nothing outside it is created, changed or followed.
    public var root: String
    public var whiteouts: WhiteoutFormat
    /// For `.overlay`: the parent chain's directories, nearest first, searched when a hard link
    /// names a file of a lower layer (the file is copied up into this layer, then linked).
    public var lowerRoots: [String]
    /// The diff digest the stream must have; the apply fails (and the caller discards the
    /// directory) on a mismatch.
    public var expectedDigest: CrispCore.Digest?
    /// `sync = filesystem`: start writeback of large files as they are written (the caller
    /// syncs the filesystem before the layer becomes visible).
    public var syncToDisk = false

    public init(root: String, whiteouts: WhiteoutFormat, lowerRoots: [String] = [], expectedDigest: CrispCore.Digest? = nil) {
        self.root = root
        self.whiteouts = whiteouts
        self.lowerRoots = lowerRoots
        self.expectedDigest = expectedDigest
    }
}

/// What an apply wrote.
public struct ApplyResult: Sendable, Equatable {
    /// SHA-256 of the whole uncompressed tar stream.
    public var diffDigest: CrispCore.Digest
    /// Length of the uncompressed tar stream.
    public var streamSize: Int64
    /// Bytes of regular-file content written (apparent size).
    public var contentBytes: Int64
    /// Files, directories and other inodes created.
    public var inodes: Int64
}

/// Applies an uncompressed tar stream (POSIX ustar, PAX, GNU; parsed by libarchive) to a
/// directory with full fidelity, without ever writing outside it: every path is resolved through
/// openat2(RESOLVE_IN_ROOT), and the last component is created with *at calls on the parent fd.
/// The diff digest is computed over the stream while it is read.
///
/// Synchronous and blocking: call it from a thread of its own (see `Storage`), never from the
/// cooperative pool. One apply per target directory at a time.
public enum LayerApplier {
    /// Applies the tar read from `fd` (the caller keeps ownership of it).
    public static func apply(fd: Int32, to target: ApplyTarget) throws -> ApplyResult {
        try apply(source: FileDescriptorSource(fd: fd), to: target)
    }

    static func apply(source: any ByteSource, to target: ApplyTarget) throws -> ApplyResult {
        let reader = StreamReader(source: source, hashing: !source.computesDigest)
        guard let archive = archive_read_new() else { throw CrispError.internal("archive_read_new failed") }
        defer { archive_read_free(archive) }
        archive_read_support_format_tar(archive)
        // The stream is already decompressed: the diff digest is defined over the tar bytes.
        archive_read_support_filter_none(archive)
        let context = Unmanaged.passUnretained(reader).toOpaque()
        var r = archive_read_open(archive, context, nil, streamReadCallback, nil)
        do {
            guard r == ARCHIVE_OK else { throw reader.failure ?? archiveError(archive, "opening the layer stream") }
            let writer = try EntryWriter(target: target)
            var entry: OpaquePointer?
            while true {
                r = archive_read_next_header(archive, &entry)
                if r == ARCHIVE_EOF { break }
                if r < ARCHIVE_WARN || entry == nil {
                    throw reader.failure ?? archiveError(archive, "reading a tar header")
                }
                try writer.write(entry: entry!, archive: archive)
            }
            try writer.finish()
            // libarchive stops at the end-of-archive marker; the digest covers every byte.
            try reader.drain()
            let digest: CrispCore.Digest
            var streamSize = reader.total
            if source.computesDigest {
                guard let own = source.streamDigest() else {
                    throw CrispError(.unavailable, "layer stream ended before it was complete (cancelled)")
                }
                digest = CrispCore.Digest(sha256Bytes: own.digest)
                streamSize = own.size
            } else {
                digest = CrispCore.Digest(sha256Bytes: reader.hasher.finalize())
            }
            if let expected = target.expectedDigest, expected != digest {
                throw CrispError.invalidArgument("layer diff digest mismatch: expected \(expected), got \(digest)")
            }
            return ApplyResult(diffDigest: digest, streamSize: streamSize,
                               contentBytes: writer.contentBytes, inodes: writer.inodes)
        } catch {
            source.cancel()
            throw error
        }
    }

    static func archiveError(_ a: OpaquePointer, _ doing: String) -> CrispError {
        let msg = archive_error_string(a).map { String(cString: $0) } ?? "unknown error"
        return CrispError.invalidArgument("malformed layer tar while \(doing): \(msg)")
    }
}

/// Glue between libarchive's read callback and a `ByteSource`; hashes every byte it hands over.
final class StreamReader {
    let source: any ByteSource
    var hasher = SHA256()
    var total: Int64 = 0
    var failure: (any Error)?

    let hashing: Bool

    init(source: any ByteSource, hashing: Bool) {
        self.source = source
        self.hashing = hashing
    }

    func nextChunk() -> UnsafeRawBufferPointer? {
        do {
            guard let chunk = try source.next() else { return nil }
            if hashing { hasher.update(bufferPointer: chunk) }
            total += Int64(chunk.count)
            return chunk
        } catch {
            failure = error
            return nil
        }
    }

    func drain() throws {
        while nextChunk() != nil {}
        if let failure { throw failure }
    }
}

private let streamReadCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = { archive, context, buffer in
    let reader = Unmanaged<StreamReader>.fromOpaque(context!).takeUnretainedValue()
    guard let chunk = reader.nextChunk() else {
        // The reader keeps the source's error; the apply loop reports it instead of libarchive's.
        return reader.failure == nil ? 0 : -1
    }
    buffer?.pointee = chunk.baseAddress
    return chunk.count
}
