import CZlib
import NIOCore

/// SPDY/3 name/value blocks, uncompressed form: uint32 count, then per pair a uint32-length-prefixed
/// name and value, all big endian.
enum SPDYHeaderBlock {
    /// Largest decompressed block we accept, and largest we will send. kubectl's blocks are a few
    /// hundred bytes; the cap only exists so a small compressed frame cannot inflate without bound.
    static let maxSize = 1 << 20

    static func write(_ headers: SPDYHeaders, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt32(headers.pairs.count))
        for pair in headers.pairs {
            // The model keeps names lowercase, but `pairs` is mutable, so enforce it here too.
            let name = pair.name.lowercased()
            buffer.writeInteger(UInt32(name.utf8.count))
            buffer.writeString(name)
            buffer.writeInteger(UInt32(pair.value.utf8.count))
            buffer.writeString(pair.value)
        }
    }

    static func parse(_ buffer: inout ByteBuffer) throws -> SPDYHeaders {
        guard let count = buffer.readInteger(as: UInt32.self) else { throw SPDYProtocolError.truncatedHeaderBlock }
        // Each pair takes at least its two length fields; checking first keeps a forged count
        // from reserving a huge array.
        guard Int(count) <= buffer.readableBytes / 8 else { throw SPDYProtocolError.headerCountTooLarge(count) }
        var headers = SPDYHeaders()
        headers.pairs.reserveCapacity(Int(count))
        for _ in 0..<count {
            let name = try readField(&buffer)
            let value = try readField(&buffer)
            // Lenient about case: spdystream lowercases what it sends, and a stray uppercase name
            // is not worth tearing down the connection for.
            headers.pairs.append((name: name.lowercased(), value: value))
        }
        guard buffer.readableBytes == 0 else { throw SPDYProtocolError.trailingHeaderBlockBytes(buffer.readableBytes) }
        return headers
    }

    private static func readField(_ buffer: inout ByteBuffer) throws -> String {
        guard let length = buffer.readInteger(as: UInt32.self), Int(length) <= buffer.readableBytes,
              let field = buffer.readString(length: Int(length))
        else { throw SPDYProtocolError.truncatedHeaderBlock }
        return field
    }
}

/// The sending side's header compression context. One per connection: every header block on it
/// continues the same deflate stream, which is what lets later blocks refer back to earlier ones.
final class SPDYHeaderDeflater {
    private let z: ZStream
    private var stream: UnsafeMutablePointer<z_stream> { z.pointer }

    init() throws {
        z = try ZStream(start: { stream in
            var rc = deflateInit_(stream, Z_DEFAULT_COMPRESSION, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            if rc == Z_OK {
                rc = spdy3HeaderDictionary.withUnsafeBufferPointer {
                    deflateSetDictionary(stream, $0.baseAddress, UInt32($0.count))
                }
                if rc != Z_OK { deflateEnd(stream) }
            }
            return rc
        }, end: { deflateEnd($0) })
    }

    /// Serialises and compresses `headers`, appending the compressed bytes to `out`.
    func compress(_ headers: SPDYHeaders, into out: inout ByteBuffer) throws {
        var block = ByteBufferAllocator().buffer(capacity: 64)
        SPDYHeaderBlock.write(headers, into: &block)
        // Refuse before deflating: once bytes enter the shared context the peer must see them.
        guard block.readableBytes <= SPDYHeaderBlock.maxSize else {
            throw SPDYProtocolError.headerBlockTooLarge(limit: SPDYHeaderBlock.maxSize)
        }
        try compress(rawBlock: block, into: &out)
    }

    /// Compresses an already serialised block. Separate so tests can send blocks the encoder would
    /// never produce.
    func compress(rawBlock block: ByteBuffer, into out: inout ByteBuffer) throws {
        try block.withUnsafeReadableBytes { input in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = UInt32(input.count)
            defer { stream.pointee.next_in = nil; stream.pointee.avail_in = 0 }
            // Z_SYNC_FLUSH ends the block on a byte boundary so the peer can inflate it whole now,
            // while keeping the window for the next block.
            var rc = Z_OK
            repeat {
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(stream.pointee.avail_in) + 64) { output in
                    stream.pointee.next_out = output.bindMemory(to: Bytef.self).baseAddress
                    stream.pointee.avail_out = UInt32(output.count)
                    rc = deflate(stream, Z_SYNC_FLUSH)
                    return output.count - Int(stream.pointee.avail_out)
                }
                // Z_BUF_ERROR only means a call had nothing left to do.
                guard rc == Z_OK || rc == Z_BUF_ERROR else { throw SPDYProtocolError.zlibFailure(code: rc) }
            } while stream.pointee.avail_out == 0
            stream.pointee.next_out = nil
        }
    }
}

/// The receiving side's header decompression context, shared by every header block the peer
/// sends on the connection (see `SPDYHeaderDeflater`).
final class SPDYHeaderInflater {
    private let z: ZStream
    private var stream: UnsafeMutablePointer<z_stream> { z.pointer }

    init() throws {
        z = try ZStream(start: { inflateInit_($0, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) },
                        end: { inflateEnd($0) })
    }

    /// Inflates one compressed header block (all of `block`'s readable bytes) and parses it.
    func decompress(_ block: ByteBuffer) throws -> SPDYHeaders {
        var plain = try inflate(block)
        return try SPDYHeaderBlock.parse(&plain)
    }

    private func inflate(_ block: ByteBuffer) throws -> ByteBuffer {
        let limit = SPDYHeaderBlock.maxSize
        var plain = ByteBufferAllocator().buffer(capacity: 256)
        try block.withUnsafeReadableBytes { input in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.pointee.avail_in = UInt32(input.count)
            defer {
                stream.pointee.next_in = nil
                stream.pointee.avail_in = 0
                stream.pointee.next_out = nil
                stream.pointee.avail_out = 0
            }
            while true {
                // Never offer more room than one byte past the limit, so a bomb costs at most 1 MiB.
                let room = min(max(4096, plain.readableBytes), limit + 1 - plain.readableBytes)
                var rc = Z_OK
                plain.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { output in
                    stream.pointee.next_out = output.bindMemory(to: Bytef.self).baseAddress
                    stream.pointee.avail_out = UInt32(room)
                    rc = CZlib.inflate(stream, Z_SYNC_FLUSH)
                    return room - Int(stream.pointee.avail_out)
                }
                if rc == Z_NEED_DICT {
                    // The first block announces the dictionary by its Adler-32; zlib checks it here.
                    rc = spdy3HeaderDictionary.withUnsafeBufferPointer {
                        inflateSetDictionary(stream, $0.baseAddress, UInt32($0.count))
                    }
                    guard rc == Z_OK else { throw SPDYProtocolError.zlibFailure(code: rc) }
                    continue
                }
                guard rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END else {
                    throw SPDYProtocolError.zlibFailure(code: rc)
                }
                guard plain.readableBytes <= limit else { throw SPDYProtocolError.headerBlockTooLarge(limit: limit) }
                if stream.pointee.avail_out > 0 {
                    if stream.pointee.avail_in == 0 { return }
                    // Output room left and input left, yet zlib stopped: it cannot go on (the peer
                    // ended the stream, or a call made no progress).
                    if rc != Z_OK { throw SPDYProtocolError.zlibFailure(code: rc) }
                }
            }
        }
        return plain
    }
}

/// One zlib stream, started by `start` and ended by `end` exactly once. zlib keeps pointers into
/// the z_stream, so it must never move: it is heap-allocated here, not a stored struct.
final class ZStream {
    let pointer: UnsafeMutablePointer<z_stream>
    private let end: (UnsafeMutablePointer<z_stream>) -> Int32

    init(start: (UnsafeMutablePointer<z_stream>) -> Int32, end: @escaping (UnsafeMutablePointer<z_stream>) -> Int32) throws {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = start(stream)
        guard rc == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw SPDYProtocolError.zlibFailure(code: rc)
        }
        pointer = stream
        self.end = end
    }

    deinit {
        _ = end(pointer)
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
}
