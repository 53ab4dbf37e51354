import CArchive
import CrispCore
import CrispOS
import Foundation

/// Decompresses a layer blob on a thread of its own: compressed chunks come in through one
/// `ByteChannel` (read blocking), the uncompressed tar goes out through another (sent blocking).
/// The compression (gzip, zstd or none) is recognised by libarchive from the magic bytes, so a
/// blob whose media type says otherwise is still read correctly.
enum LayerDecompressor {
    /// Starts the thread. The output ends with the input's error, a decompression error, or —
    /// only after the whole input has been read without error — normally.
    static func start(input: ByteChannel, output: ByteChannel, blob: String) {
        startThread(name: "crisp-decompress", stackSize: 1 << 20) {
            do {
                try run(input: input, output: output, blob: blob)
                output.finish()
            } catch {
                input.cancel()
                output.finish(error: (error as? CrispError) ?? CrispError(.invalidArgument, "cannot decompress layer \(blob)", cause: error))
            }
        }
    }

    /// What libarchive's read callback needs: the channel (whose last chunk stays valid until
    /// the next call, as libarchive requires) and the input's error, reported instead of
    /// libarchive's own.
    final class Reader {
        let input: ByteChannel
        var failure: (any Error)?
        init(input: ByteChannel) { self.input = input }
    }

    static func run(input: ByteChannel, output: ByteChannel, blob: String) throws {
        guard let a = archive_read_new() else { throw CrispError.internal("archive_read_new failed") }
        defer { archive_read_free(a) }
        archive_read_support_filter_gzip(a)
        archive_read_support_filter_zstd(a)
        archive_read_support_format_raw(a)
        let reader = Reader(input: input)
        let context = Unmanaged.passUnretained(reader).toOpaque()
        func fail(_ doing: String) -> any Error {
            if let f = reader.failure { return f }
            let msg = archive_error_string(a).map { String(cString: $0) } ?? "unknown error"
            return CrispError.invalidArgument("layer \(blob): \(doing): \(msg)")
        }
        try withExtendedLifetime(reader) {
            guard archive_read_open(a, context, nil, readCallback, nil) == ARCHIVE_OK else { throw fail("opening the blob") }
            var entry: OpaquePointer?
            guard archive_read_next_header(a, &entry) == ARCHIVE_OK else { throw fail("reading the blob") }
            let size = 256 << 10
            var buffer = [UInt8](repeating: 0, count: size)
            while true {
                let n = buffer.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, size) }
                if n < 0 { throw fail("decompressing") }
                if n == 0 { break }
                guard output.sendBlocking(Array(buffer[0..<n])) else { throw CancellationError() }
            }
            // The compressed stream may end before the input does (padding) or the input may
            // still report a failure (digest mismatch): read it to the end.
            while try input.nextBlocking() != nil {}
        }
    }
}

private let readCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = { _, context, buffer in
    let reader = Unmanaged<LayerDecompressor.Reader>.fromOpaque(context!).takeUnretainedValue()
    do {
        guard let chunk = try reader.input.readBlocking() else { return 0 }
        buffer?.pointee = chunk.baseAddress
        return chunk.count
    } catch {
        reader.failure = error
        return -1
    }
}
