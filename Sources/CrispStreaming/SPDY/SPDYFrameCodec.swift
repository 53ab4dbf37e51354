import NIOCore

/// Wire constants of SPDY/3 framing.
enum SPDYWire {
    static let version: UInt16 = 3
    static let headerLength = 8
    static let maxLength = 0xFF_FFFF  // the 24-bit length field
    static let streamIDMask: UInt32 = 0x7FFF_FFFF

    enum ControlType {
        static let synStream: UInt16 = 1
        static let synReply: UInt16 = 2
        static let rstStream: UInt16 = 3
        static let settings: UInt16 = 4
        static let ping: UInt16 = 6
        static let goAway: UInt16 = 7
        static let headers: UInt16 = 8
        static let windowUpdate: UInt16 = 9
    }

    enum Flag {
        static let fin: UInt8 = 0x01
        static let unidirectional: UInt8 = 0x02
        static let settingsClearPrevious: UInt8 = 0x01
    }
}

/// Bytes to `SPDYFrame`s. Holds the connection's inbound header decompression context, so one
/// instance per connection, and it cannot recover from an error.
///
/// A DATA frame's payload is passed on in pieces as its bytes arrive, each piece a `.data` of
/// the same stream with FIN on the last one only. Waiting for whole frames would make
/// ByteToMessageHandler merge every read that ends inside a frame into the one before, a copy
/// of each streamed byte; a stream's bytes mean the same however they are split.
final class SPDYFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = SPDYFrame

    private let inflater: SPDYHeaderInflater
    /// Payload bytes of an unknown control frame still to be thrown away. Skipped as they arrive
    /// instead of buffering the frame, since we never look at them.
    private var bytesToSkip = 0
    /// The DATA frame whose payload is still arriving.
    private var dataInFlight: (streamID: UInt32, fin: Bool, remaining: Int)?

    init() throws {
        inflater = try SPDYHeaderInflater()
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try decodeFrame(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// The next frame in `buffer` (or the next piece of a DATA frame's payload), consuming it;
    /// nil when more bytes are needed.
    func decodeFrame(from buffer: inout ByteBuffer) throws -> SPDYFrame? {
        while true {
            if let data = dataInFlight {
                guard buffer.readableBytes > 0 else { return nil }
                let piece = buffer.readSlice(length: min(data.remaining, buffer.readableBytes))!
                let remaining = data.remaining - piece.readableBytes
                dataInFlight = remaining > 0 ? (data.streamID, data.fin, remaining) : nil
                return .data(streamID: data.streamID, fin: data.fin && remaining == 0, payload: piece)
            }
            if bytesToSkip > 0 {
                let skipped = min(bytesToSkip, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: skipped)
                bytesToSkip -= skipped
                if bytesToSkip > 0 { return nil }
            }
            guard let (word0, word1) = buffer.peekMultipleIntegers(as: (UInt32, UInt32).self) else {
                return nil
            }
            let flags = UInt8(word1 >> 24)
            let length = Int(word1 & 0xFF_FFFF)
            let isControl = word0 & 0x8000_0000 != 0
            var type: UInt16 = 0
            if isControl {
                let version = UInt16((word0 >> 16) & 0x7FFF)
                guard version == SPDYWire.version else { throw SPDYProtocolError.unsupportedVersion(version) }
                type = UInt16(word0 & 0xFFFF)
                if !Self.knownControlTypes.contains(type) {
                    // The spec says to ignore control frames we do not recognise (NOOP, CREDENTIAL...).
                    buffer.moveReaderIndex(forwardBy: SPDYWire.headerLength)
                    bytesToSkip = length
                    continue
                }
            } else if length > 0 {
                buffer.moveReaderIndex(forwardBy: SPDYWire.headerLength)
                dataInFlight = (word0 & SPDYWire.streamIDMask, flags & SPDYWire.Flag.fin != 0, length)
                continue
            }
            guard buffer.readableBytes >= SPDYWire.headerLength + length else { return nil }
            buffer.moveReaderIndex(forwardBy: SPDYWire.headerLength)
            var body = buffer.readSlice(length: length)!
            if !isControl {
                return .data(streamID: word0 & SPDYWire.streamIDMask, fin: flags & SPDYWire.Flag.fin != 0, payload: body)
            }
            return try parseControl(type: type, flags: flags, body: &body)
        }
    }

    private static let knownControlTypes: Set<UInt16> = [
        SPDYWire.ControlType.synStream, SPDYWire.ControlType.synReply, SPDYWire.ControlType.rstStream,
        SPDYWire.ControlType.settings, SPDYWire.ControlType.ping, SPDYWire.ControlType.goAway,
        SPDYWire.ControlType.headers, SPDYWire.ControlType.windowUpdate,
    ]

    private func parseControl(type: UInt16, flags: UInt8, body: inout ByteBuffer) throws -> SPDYFrame {
        let length = body.readableBytes
        let fin = flags & SPDYWire.Flag.fin != 0
        func require(_ valid: Bool) throws {
            if !valid { throw SPDYProtocolError.invalidFrameLength(type: type, length: length) }
        }
        func streamID() -> UInt32 { body.readInteger(as: UInt32.self)! & SPDYWire.streamIDMask }

        switch type {
        case SPDYWire.ControlType.synStream:
            try require(length >= 10)
            let id = streamID()
            let associated = streamID()
            let priority = body.readInteger(as: UInt8.self)! >> 5
            body.moveReaderIndex(forwardBy: 1)  // CREDENTIAL slot, unused by SPDY/3.1
            let headers = try inflater.decompress(body)
            return .synStream(
                streamID: id, associatedStreamID: associated, priority: priority, fin: fin,
                unidirectional: flags & SPDYWire.Flag.unidirectional != 0, headers: headers)
        case SPDYWire.ControlType.synReply:
            try require(length >= 4)
            let id = streamID()
            return try .synReply(streamID: id, fin: fin, headers: inflater.decompress(body))
        case SPDYWire.ControlType.headers:
            try require(length >= 4)
            let id = streamID()
            return try .headers(streamID: id, fin: fin, headers: inflater.decompress(body))
        case SPDYWire.ControlType.rstStream:
            try require(length == 8)
            let id = streamID()
            return .rstStream(streamID: id, status: body.readInteger()!)
        case SPDYWire.ControlType.settings:
            try require(length >= 4)
            let count = body.readInteger(as: UInt32.self)!
            try require(Int(count) <= body.readableBytes / 8)
            var entries: [SPDYSetting] = []
            entries.reserveCapacity(Int(count))
            for _ in 0..<count {
                let (flagsAndID, value) = body.readMultipleIntegers(as: (UInt32, UInt32).self)!
                entries.append(SPDYSetting(flags: UInt8(flagsAndID >> 24), id: flagsAndID & 0xFF_FFFF, value: value))
            }
            return .settings(clearPrevious: flags & SPDYWire.Flag.settingsClearPrevious != 0, entries: entries)
        case SPDYWire.ControlType.ping:
            try require(length == 4)
            return .ping(id: body.readInteger()!)
        case SPDYWire.ControlType.goAway:
            try require(length == 8)
            let id = streamID()
            return .goAway(lastGoodStreamID: id, status: body.readInteger()!)
        case SPDYWire.ControlType.windowUpdate:
            try require(length == 8)
            let id = streamID()
            return .windowUpdate(streamID: id, delta: streamID())
        default:
            preconditionFailure("unknown control type \(type) should have been skipped")
        }
    }
}

/// `SPDYFrameEncoder` as the pipeline's writer of frames. A DATA frame goes out as two buffers,
/// its 8-byte header and the payload as it came, which the socket writes together (writev):
/// MessageToByteHandler would copy every payload into one new buffer first.
final class SPDYFrameWriter: ChannelOutboundHandler {
    typealias OutboundIn = SPDYFrame
    typealias OutboundOut = ByteBuffer

    private let encoder: SPDYFrameEncoder

    init() throws {
        encoder = try SPDYFrameEncoder()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        do {
            if case let .data(streamID, fin, payload) = frame, payload.readableBytes > 0 {
                var header = context.channel.allocator.buffer(capacity: SPDYWire.headerLength)
                try encoder.encodeDataHeader(streamID: streamID, fin: fin, length: payload.readableBytes, out: &header)
                context.write(wrapOutboundOut(header), promise: nil)
                context.write(wrapOutboundOut(payload), promise: promise)
            } else {
                var out = context.channel.allocator.buffer(capacity: 64)
                try encoder.encode(data: frame, out: &out)
                context.write(wrapOutboundOut(out), promise: promise)
            }
        } catch {
            promise?.fail(error)
            context.fireErrorCaught(error)
        }
    }
}

/// `SPDYFrame`s to bytes. Holds the connection's outbound header compression context, so one
/// instance per connection; frames must be encoded in the order they are sent.
final class SPDYFrameEncoder {
    private let deflater: SPDYHeaderDeflater

    init() throws {
        deflater = try SPDYHeaderDeflater()
    }

    func encode(data frame: SPDYFrame, out: inout ByteBuffer) throws {
        switch frame {
        case .data(let streamID, let fin, let payload):
            try encodeDataHeader(streamID: streamID, fin: fin, length: payload.readableBytes, out: &out)
            out.writeImmutableBuffer(payload)

        case .synStream(let streamID, let associated, let priority, let fin, let unidirectional, let headers):
            try check("stream id", streamID, fitsIn: SPDYWire.streamIDMask)
            try check("associated stream id", associated, fitsIn: SPDYWire.streamIDMask)
            try check("priority", UInt32(priority), fitsIn: 7)
            let flags = (fin ? SPDYWire.Flag.fin : 0) | (unidirectional ? SPDYWire.Flag.unidirectional : 0)
            try writeControl(SPDYWire.ControlType.synStream, flags: flags, into: &out) { body in
                body.writeMultipleIntegers(streamID, associated, priority << 5, UInt8(0))
                try deflater.compress(headers, into: &body)
            }

        case .synReply(let streamID, let fin, let headers):
            try writeHeaderFrame(SPDYWire.ControlType.synReply, streamID: streamID, fin: fin, headers: headers, into: &out)

        case .headers(let streamID, let fin, let headers):
            try writeHeaderFrame(SPDYWire.ControlType.headers, streamID: streamID, fin: fin, headers: headers, into: &out)

        case .rstStream(let streamID, let status):
            try check("stream id", streamID, fitsIn: SPDYWire.streamIDMask)
            try writeControl(SPDYWire.ControlType.rstStream, flags: 0, into: &out) { $0.writeMultipleIntegers(streamID, status) }

        case .settings(let clearPrevious, let entries):
            for entry in entries { try check("setting id", entry.id, fitsIn: 0xFF_FFFF) }
            let flags = clearPrevious ? SPDYWire.Flag.settingsClearPrevious : 0
            try writeControl(SPDYWire.ControlType.settings, flags: flags, into: &out) { body in
                body.writeInteger(UInt32(entries.count))
                for entry in entries {
                    body.writeMultipleIntegers(UInt32(entry.flags) << 24 | entry.id, entry.value)
                }
            }

        case .ping(let id):
            try writeControl(SPDYWire.ControlType.ping, flags: 0, into: &out) { $0.writeInteger(id) }

        case .goAway(let lastGood, let status):
            try check("last good stream id", lastGood, fitsIn: SPDYWire.streamIDMask)
            try writeControl(SPDYWire.ControlType.goAway, flags: 0, into: &out) { $0.writeMultipleIntegers(lastGood, status) }

        case .windowUpdate(let streamID, let delta):
            try check("stream id", streamID, fitsIn: SPDYWire.streamIDMask)
            try check("window delta", delta, fitsIn: SPDYWire.streamIDMask)
            try writeControl(SPDYWire.ControlType.windowUpdate, flags: 0, into: &out) { $0.writeMultipleIntegers(streamID, delta) }
        }
    }

    /// The 8 bytes that go before a DATA frame's payload of `length` bytes.
    func encodeDataHeader(streamID: UInt32, fin: Bool, length: Int, out: inout ByteBuffer) throws {
        try check("stream id", streamID, fitsIn: SPDYWire.streamIDMask)
        guard length <= SPDYWire.maxLength else { throw SPDYProtocolError.frameTooLarge(length: length) }
        out.writeMultipleIntegers(streamID, UInt32(fin ? SPDYWire.Flag.fin : 0) << 24 | UInt32(length))
    }

    private func writeHeaderFrame(
        _ type: UInt16, streamID: UInt32, fin: Bool, headers: SPDYHeaders, into out: inout ByteBuffer
    ) throws {
        try check("stream id", streamID, fitsIn: SPDYWire.streamIDMask)
        try writeControl(type, flags: fin ? SPDYWire.Flag.fin : 0, into: &out) { body in
            body.writeInteger(streamID)
            try deflater.compress(headers, into: &body)
        }
    }

    /// Writes the control frame header, then the body, then patches in the body's length, which for
    /// header-carrying frames is only known after compression.
    private func writeControl(
        _ type: UInt16, flags: UInt8, into out: inout ByteBuffer, body: (inout ByteBuffer) throws -> Void
    ) throws {
        let start = out.writerIndex
        out.writeMultipleIntegers(0x8000 | SPDYWire.version, type, UInt32(0))
        try body(&out)
        let length = out.writerIndex - start - SPDYWire.headerLength
        guard length <= SPDYWire.maxLength else { throw SPDYProtocolError.frameTooLarge(length: length) }
        out.setInteger(UInt32(flags) << 24 | UInt32(length), at: start + 4)
    }

    private func check(_ field: String, _ value: UInt32, fitsIn max: UInt32) throws {
        guard value <= max else { throw SPDYProtocolError.valueOutOfRange(field: field, value: value) }
    }
}
