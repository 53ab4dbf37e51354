import NIOCore
import NIOEmbedded
import Testing

@testable import CrispStreaming

@Suite struct SPDYFrameTests {
    static let execHeaders = SPDYHeaders([("streamtype", "stdout"), ("port", "8080"), ("requestid", "1")])

    static let everyFrameType: [SPDYFrame] = [
        .synStream(streamID: 1, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false, headers: execHeaders),
        .synStream(streamID: 3, associatedStreamID: 1, priority: 7, fin: true, unidirectional: true, headers: SPDYHeaders()),
        .synReply(streamID: 1, fin: false, headers: SPDYHeaders()),
        .synReply(streamID: 3, fin: true, headers: SPDYHeaders([("status", "200"), ("x-multi", "a\u{0}b")])),
        .headers(streamID: 5, fin: true, headers: execHeaders),
        .data(streamID: 1, fin: false, payload: ByteBuffer(string: "hello, world")),
        .data(streamID: 0x7FFF_FFFF, fin: true, payload: ByteBuffer()),
        .rstStream(streamID: 7, status: SPDYRstStatus.cancel),
        .settings(clearPrevious: true, entries: [
            SPDYSetting(flags: 1, id: 4, value: 100), SPDYSetting(flags: 0, id: 7, value: 64 * 1024),
        ]),
        .settings(clearPrevious: false, entries: []),
        .ping(id: 0xFFFF_FFFF),
        .goAway(lastGoodStreamID: 9, status: SPDYGoAwayStatus.internalError),
        .windowUpdate(streamID: 1, delta: 0x7FFF_FFFF),
    ]

    /// SYN_STREAM 1 {streamtype: stdout}, SYN_REPLY 1 {}, SYN_STREAM 3 {streamtype: stderr} and
    /// DATA 3 FIN "hello", as written by the vendored github.com/moby/spdystream framer (v0.5.1,
    /// from cri-tools) with one Framer, i.e. one shared zlib context.
    static let spdystreamBytes = hexBytes(
        "800300010000002e0000000100000000000078f9e3c6a7c262606060646060e0",
        "2a2e294a4dcc8516256cc52529f9a52500000000ffff800300020000000e0000",
        "00016260606000000000ffff800300010000001500000003000000000000c229",
        "9f5a5404000000ffff000000030100000568656c6c6f")

    @Test func roundTripsEveryFrameType() throws {
        let encoded = try encode(Self.everyFrameType)
        #expect(try decodeAll(encoded) == Self.everyFrameType)
    }

    @Test func roundTripsThroughChannelHandlers() throws {
        let sender = EmbeddedChannel(handler: try SPDYFrameWriter())
        let receiver = EmbeddedChannel(handler: ByteToMessageHandler(try SPDYFrameDecoder()))
        for frame in Self.everyFrameType {
            try sender.writeOutbound(frame)
            while let bytes = try sender.readOutbound(as: ByteBuffer.self) { try receiver.writeInbound(bytes) }
        }
        var received: [SPDYFrame] = []
        while let frame = try receiver.readInbound(as: SPDYFrame.self) { received.append(frame) }
        #expect(received == Self.everyFrameType)
        _ = try sender.finish()
        _ = try receiver.finish()
    }

    @Test func headerBlocksShareOneCompressionContext() throws {
        let encoder = try SPDYFrameEncoder()
        let frames = (0..<4).map { i in
            SPDYFrame.synStream(
                streamID: UInt32(2 * i + 1), associatedStreamID: 0, priority: 0, fin: false, unidirectional: false,
                headers: Self.execHeaders)
        }
        var sizes: [Int] = []
        var wire = ByteBuffer()
        for frame in frames {
            var one = ByteBuffer()
            try encoder.encode(data: frame, out: &one)
            sizes.append(one.readableBytes)
            wire.writeImmutableBuffer(one)
        }
        // Repeats compress to back-references into the earlier blocks.
        #expect(sizes[1] < sizes[0])
        #expect(try decodeAll(wire) == frames)

        // A second block alone is meaningless to a fresh context: it has no zlib header.
        let decoder = try SPDYFrameDecoder()
        var second = wire.getSlice(at: sizes[0], length: sizes[1])!
        #expect(throws: SPDYProtocolError.self) { try decoder.decodeFrame(from: &second) }
    }

    @Test func decodesFramesFedOneByteAtATime() throws {
        let frames = Self.everyFrameType
        let wire = try encode(frames)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(try SPDYFrameDecoder()))
        var received: [SPDYFrame] = []
        for byte in wire.readableBytesView {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            while let frame = try channel.readInbound(as: SPDYFrame.self) { received.append(frame) }
        }
        // "hello, world" came as 12 pieces of one byte, FIN on none (its frame had none).
        #expect(received.filter { if case .data(1, false, _) = $0 { true } else { false } }.count == 12)
        #expect(joiningData(received) == frames)
        #expect(try channel.finish().isClean)
    }

    /// A DATA frame's payload goes on as it arrives, not once the frame is whole; FIN comes
    /// with its last byte.
    @Test func dataIsPassedOnAsItArrives() throws {
        let payload = ByteBuffer(repeating: 7, count: 100_000)
        var wire = try encode([.data(streamID: 5, fin: true, payload: payload), .ping(id: 1)])
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(try SPDYFrameDecoder()))
        try channel.writeInbound(wire.readSlice(length: 8 + 1000)!)
        #expect(try channel.readInbound(as: SPDYFrame.self) == .data(streamID: 5, fin: false, payload: ByteBuffer(repeating: 7, count: 1000)))
        #expect(try channel.readInbound(as: SPDYFrame.self) == nil)
        try channel.writeInbound(wire.readSlice(length: 99_000)!)
        #expect(try channel.readInbound(as: SPDYFrame.self) == .data(streamID: 5, fin: true, payload: ByteBuffer(repeating: 7, count: 99_000)))
        try channel.writeInbound(wire)
        #expect(try channel.readInbound(as: SPDYFrame.self) == .ping(id: 1))
        #expect(try channel.finish().isClean)
    }

    /// The writer sends a DATA frame's header and payload as two buffers, the payload untouched.
    @Test func theWriterDoesNotCopyPayloads() throws {
        let channel = EmbeddedChannel(handler: try SPDYFrameWriter())
        let payload = ByteBuffer(string: "some output")
        try channel.writeOutbound(SPDYFrame.data(streamID: 3, fin: false, payload: payload))
        let header = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let body = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(header.readableBytesView) == [0, 0, 0, 3, 0, 0, 0, 11])
        #expect(body == payload)
        let same = body.withUnsafeReadableBytes { b in payload.withUnsafeReadableBytes { $0.baseAddress == b.baseAddress } }
        #expect(same, "the payload was copied")
        // An empty DATA frame (a FIN) and control frames are one buffer each.
        try channel.writeOutbound(SPDYFrame.data(streamID: 3, fin: true, payload: ByteBuffer()))
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { Array($0.readableBytesView) } == [0, 0, 0, 3, 1, 0, 0, 0])
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(try channel.finish().isClean)
    }

    @Test func decodesFramesWrittenBySpdystream() throws {
        let frames = try decodeAll(ByteBuffer(bytes: Self.spdystreamBytes))
        #expect(frames == [
            .synStream(streamID: 1, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false,
                       headers: SPDYHeaders([("streamtype", "stdout")])),
            .synReply(streamID: 1, fin: false, headers: SPDYHeaders()),
            .synStream(streamID: 3, associatedStreamID: 0, priority: 0, fin: false, unidirectional: false,
                       headers: SPDYHeaders([("streamtype", "stderr")])),
            .data(streamID: 3, fin: true, payload: ByteBuffer(string: "hello")),
        ])
    }

    @Test func dictionaryIsTheSPDY3One() {
        // zlib names a preset dictionary by its Adler-32; spdystream's frames above carry 0xE3C6A7C2.
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in spdy3HeaderDictionary {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        #expect(spdy3HeaderDictionary.count == 1423)
        #expect(b << 16 | a == 0xE3C6_A7C2)
    }

    @Test func skipsUnknownControlFrames() throws {
        var wire = controlFrame(type: 5, body: [1, 2, 3, 4, 5, 6, 7, 8, 9])  // SPDY/2's NOOP, gone in SPDY/3
        wire.writeImmutableBuffer(controlFrame(type: 10, body: []))  // CREDENTIAL, dropped by SPDY/3.1
        wire.writeImmutableBuffer(try encode([.ping(id: 42)]))
        #expect(try decodeAll(wire) == [.ping(id: 42)])

        // Also when the skipped payload arrives in pieces.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(try SPDYFrameDecoder()))
        for byte in wire.readableBytesView { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(try channel.readInbound(as: SPDYFrame.self) == .ping(id: 42))
        #expect(try channel.readInbound(as: SPDYFrame.self) == nil)
    }

    @Test func rejectsOtherVersions() throws {
        let decoder = try SPDYFrameDecoder()
        var wire = controlFrame(version: 2, type: SPDYWire.ControlType.ping, body: [0, 0, 0, 1])
        #expect(throws: SPDYProtocolError.unsupportedVersion(2)) { try decoder.decodeFrame(from: &wire) }

        let channel = EmbeddedChannel(handler: ByteToMessageHandler(try SPDYFrameDecoder()))
        #expect(throws: SPDYProtocolError.unsupportedVersion(4)) {
            try channel.writeInbound(controlFrame(version: 4, type: SPDYWire.ControlType.ping, body: [0, 0, 0, 1]))
        }
    }

    @Test func rejectsWrongFixedLengths() throws {
        var wire = controlFrame(type: SPDYWire.ControlType.rstStream, body: [0, 0, 0, 1])
        #expect(throws: SPDYProtocolError.invalidFrameLength(type: 3, length: 4)) {
            try SPDYFrameDecoder().decodeFrame(from: &wire)
        }
        // SETTINGS claiming two entries but carrying one.
        wire = controlFrame(type: SPDYWire.ControlType.settings, body: [0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 1])
        #expect(throws: SPDYProtocolError.invalidFrameLength(type: 4, length: 12)) {
            try SPDYFrameDecoder().decodeFrame(from: &wire)
        }
    }

    @Test func rejectsHeaderBlockBomb() throws {
        // One pair whose value is 2 MiB of one letter: a few kilobytes compressed.
        var block = ByteBuffer()
        block.writeMultipleIntegers(UInt32(1), UInt32(1), UInt8(ascii: "x"), UInt32(2 << 20))
        block.writeRepeatingByte(UInt8(ascii: "a"), count: 2 << 20)
        let wire = try synReply(withRawBlock: block)
        #expect(wire.readableBytes < 16 * 1024)
        var input = wire
        #expect(throws: SPDYProtocolError.headerBlockTooLarge(limit: 1 << 20)) {
            try SPDYFrameDecoder().decodeFrame(from: &input)
        }
    }

    @Test func rejectsMalformedHeaderBlocks() throws {
        var block = ByteBuffer()
        // The value claims 10 bytes and has 2.
        block.writeMultipleIntegers(UInt32(1), UInt32(3))
        block.writeString("abc")
        block.writeInteger(UInt32(10))
        block.writeString("xy")
        var wire = try synReply(withRawBlock: block)
        #expect(throws: SPDYProtocolError.truncatedHeaderBlock) { try SPDYFrameDecoder().decodeFrame(from: &wire) }

        block = ByteBuffer()
        block.writeMultipleIntegers(UInt32(1000), UInt32(0), UInt32(0))
        wire = try synReply(withRawBlock: block)
        #expect(throws: SPDYProtocolError.headerCountTooLarge(1000)) { try SPDYFrameDecoder().decodeFrame(from: &wire) }

        block = ByteBuffer()
        block.writeMultipleIntegers(UInt32(0), UInt8(7))
        wire = try synReply(withRawBlock: block)
        #expect(throws: SPDYProtocolError.trailingHeaderBlockBytes(1)) { try SPDYFrameDecoder().decodeFrame(from: &wire) }

        // Not zlib at all.
        wire = controlFrame(type: SPDYWire.ControlType.synReply, body: [0, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF])
        #expect(throws: SPDYProtocolError.self) { try SPDYFrameDecoder().decodeFrame(from: &wire) }
    }

    @Test func encoderRejectsFieldsTooWideForTheWire() throws {
        let encoder = try SPDYFrameEncoder()
        var out = ByteBuffer()
        #expect(throws: SPDYProtocolError.valueOutOfRange(field: "stream id", value: 0x8000_0000)) {
            try encoder.encode(data: .rstStream(streamID: 0x8000_0000, status: 1), out: &out)
        }
        #expect(throws: SPDYProtocolError.valueOutOfRange(field: "priority", value: 8)) {
            try encoder.encode(
                data: .synStream(streamID: 1, associatedStreamID: 0, priority: 8, fin: false, unidirectional: false,
                                 headers: SPDYHeaders()),
                out: &out)
        }
        #expect(throws: SPDYProtocolError.frameTooLarge(length: 1 << 24)) {
            try encoder.encode(data: .data(streamID: 1, fin: false, payload: ByteBuffer(repeating: 0, count: 1 << 24)), out: &out)
        }
    }

    @Test func headerNamesAreCaseInsensitive() {
        let headers = SPDYHeaders([("StreamType", "error"), ("streamtype", "second")])
        #expect(headers["STREAMTYPE"] == "error")
        #expect(headers.pairs[0].name == "streamtype")
        #expect(headers["missing"] == nil)
        #expect(headers == SPDYHeaders([("streamtype", "error"), ("STREAMTYPE", "second")]))
        #expect(headers != SPDYHeaders([("streamtype", "error")]))
    }

    // MARK: helpers

    /// Consecutive DATA pieces of one stream joined into one frame, FIN from the last piece.
    private func joiningData(_ frames: [SPDYFrame]) -> [SPDYFrame] {
        var joined: [SPDYFrame] = []
        for frame in frames {
            if case let .data(id, fin, payload) = frame, case let .data(lastID, false, last)? = joined.last, lastID == id {
                var merged = last
                merged.writeImmutableBuffer(payload)
                joined[joined.count - 1] = .data(streamID: id, fin: fin, payload: merged)
            } else {
                joined.append(frame)
            }
        }
        return joined
    }

    private func encode(_ frames: [SPDYFrame]) throws -> ByteBuffer {
        let encoder = try SPDYFrameEncoder()
        var out = ByteBuffer()
        for frame in frames { try encoder.encode(data: frame, out: &out) }
        return out
    }

    private func decodeAll(_ buffer: ByteBuffer) throws -> [SPDYFrame] {
        let decoder = try SPDYFrameDecoder()
        var input = buffer
        var frames: [SPDYFrame] = []
        while let frame = try decoder.decodeFrame(from: &input) { frames.append(frame) }
        #expect(input.readableBytes == 0)
        return frames
    }

    private func controlFrame(version: UInt16 = 3, type: UInt16, flags: UInt8 = 0, body: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeMultipleIntegers(0x8000 | version, type, UInt32(flags) << 24 | UInt32(body.count))
        buffer.writeBytes(body)
        return buffer
    }

    /// A SYN_REPLY for stream 1 carrying `block` compressed as is, bypassing the encoder's checks.
    private func synReply(withRawBlock block: ByteBuffer) throws -> ByteBuffer {
        var body = ByteBuffer(integer: UInt32(1))
        try SPDYHeaderDeflater().compress(rawBlock: block, into: &body)
        return controlFrame(type: SPDYWire.ControlType.synReply, body: Array(body.readableBytesView))
    }
}

private func hexBytes(_ lines: String...) -> [UInt8] {
    let hex = Array(lines.joined().utf8)
    return stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}
