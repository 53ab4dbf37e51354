import CrispCore
import CrispOS
import CArchive
import CCrispShim
import Crypto
import Glibc

/// Writes a PAX tar to a file descriptor through libarchive, one entry at a time, hashing the
/// stream as it goes. File data is copied in 64 KiB pieces: memory use does not depend on file
/// sizes. Not thread-safe; one writer per stream.
final class TarStreamWriter {
    private let archive: OpaquePointer
    private let sink: Sink
    private var buffer = [UInt8](repeating: 0, count: 64 << 10)
    private var finished = false

    /// The byte sink behind libarchive's write callback.
    final class Sink {
        let fd: Int32
        var hasher = SHA256()
        var size: Int64 = 0
        var failure: SystemCallError?
        init(fd: Int32) { self.fd = fd }
    }

    init(fd: Int32) throws {
        guard let a = archive_write_new() else { throw CrispError.internal("archive_write_new failed") }
        archive = a
        sink = Sink(fd: fd)
        // Full PAX (not restricted): mtimes keep their nanoseconds, xattrs and non-UTF-8 names
        // (hdrcharset=BINARY) are recorded exactly.
        archive_write_set_format_pax(a)
        archive_write_set_bytes_in_last_block(a, 1)
        let context = Unmanaged.passUnretained(sink).toOpaque()
        guard archive_write_open(a, context, nil, tarWriteCallback, nil) == ARCHIVE_OK else {
            let error = Self.error(a, "opening the tar stream")
            archive_write_free(a)
            throw error
        }
    }

    deinit {
        guard !finished else { return }
        // An abandoned stream gets no end-of-archive blocks: a reader must see it as truncated.
        archive_write_fail(archive)
        archive_write_free(archive)
    }

    /// Digest and length of what was written so far (complete after `finish`).
    var digest: CrispCore.Digest { CrispCore.Digest(sha256Bytes: sink.hasher.finalize()) }
    var size: Int64 { sink.size }

    /// Writes the end-of-archive blocks.
    func finish() throws {
        guard !finished else { return }
        finished = true
        let r = archive_write_close(archive)
        defer { archive_write_free(archive) }
        if let failure = sink.failure { throw failure }
        if r != ARCHIVE_OK { throw Self.error(archive, "finishing the tar stream") }
    }

    /// An AUFS-style whiteout: an empty regular file, mode 0644, at `path` (`DIR/.wh.NAME`),
    /// stamped with `mtime` when given.
    func writeWhiteout(at path: RawPath, mtime: timespec? = nil) throws {
        guard let entry = archive_entry_new() else { throw CrispError.internal("archive_entry_new failed") }
        defer { archive_entry_free(entry) }
        archive_entry_copy_pathname(entry, path.c)
        archive_entry_set_filetype(entry, UInt32(Glibc.S_IFREG))
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_size(entry, 0)
        if let mtime { archive_entry_set_mtime(entry, mtime.tv_sec, mtime.tv_nsec) }
        try write(entry, path: path)
    }

    /// Writes the header of `entry` and, for regular files, `contentFD`'s data (exactly the size
    /// the header declares; a file that changed size meanwhile is cut or zero-padded).
    func write(_ entry: OpaquePointer, path: RawPath, contentFD: Int32? = nil) throws {
        if archive_write_header(archive, entry) < ARCHIVE_WARN {
            throw sink.failure ?? Self.error(archive, "writing the header of \"\(path)\"")
        }
        if let fd = contentFD {
            var remaining = archive_entry_size(entry)
            while remaining > 0 {
                let n = try buffer.withUnsafeMutableBytes { b in
                    try syscallChecked("read", "\(path)") { read(fd, b.baseAddress, min(b.count, Int(remaining))) }
                }
                if n == 0 { break }
                let w = buffer.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, n) }
                if w < 0 { throw sink.failure ?? Self.error(archive, "writing the data of \"\(path)\"") }
                remaining -= Int64(n)
            }
        }
        if archive_write_finish_entry(archive) < ARCHIVE_WARN {
            throw sink.failure ?? Self.error(archive, "finishing \"\(path)\"")
        }
    }

    static func error(_ a: OpaquePointer, _ doing: String) -> CrispError {
        let msg = archive_error_string(a).map { String(cString: $0) } ?? "unknown error"
        return CrispError.internal("tar writer failed while \(doing): \(msg)")
    }
}

private let tarWriteCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Int = { _, context, buffer, length in
    let sink = Unmanaged<TarStreamWriter.Sink>.fromOpaque(context!).takeUnretainedValue()
    guard let buffer, length > 0 else { return 0 }
    var done = 0
    while done < length {
        let n = write(sink.fd, buffer + done, length - done)
        if n < 0 {
            if errno == EINTR { continue }
            sink.failure = SystemCallError("write", "the diff output (fd \(sink.fd))", errno: errno)
            return -1
        }
        done += n
    }
    sink.hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: length))
    sink.size += Int64(length)
    return length
}
