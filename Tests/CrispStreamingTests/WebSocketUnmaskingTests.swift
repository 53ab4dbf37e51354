import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import CrispStreaming

/// crisp's eight-bytes-at-a-time unmasking gives NIOWebSocket's byte-at-a-time result.
@Suite struct WebSocketUnmaskingTests {
    @Test func unmaskingMatchesNIOForEveryLengthAndOffset() {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...40) + [4095, 65_536, 65_541] {
            for offset in 0..<4 {
                let key = WebSocketMaskingKey.random(using: &generator)
                let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                var ours = ByteBuffer(bytes: payload)
                var nio = ByteBuffer(bytes: payload)
                WebSocketUnmasking.unmask(&ours, key: key, indexOffset: offset)
                nio.webSocketUnmask(key, indexOffset: offset)
                #expect(ours == nio, "length \(length), offset \(offset)")
            }
        }
    }

    /// A buffer whose readable bytes start past its storage's first byte (a frame cut out of a
    /// larger read) is unmasked from its reader index, and nothing outside it changes.
    @Test func onlyTheReadableBytesAreUnmasked() {
        let key = WebSocketMaskingKey([1, 2, 3, 4])!
        var whole = ByteBuffer(bytes: Array(repeating: 0, count: 23))
        whole.moveReaderIndex(forwardBy: 3)
        var slice = whole.getSlice(at: 3, length: 17)!
        WebSocketUnmasking.unmask(&slice, key: key)
        #expect(Array(slice.readableBytesView) == (0..<17).map { UInt8($0 % 4 + 1) })
        #expect(Array(whole.readableBytesView).allSatisfy { $0 == 0 })
    }

    @Test func framesFollowTheirMaskAndExtensionData() {
        let key = WebSocketMaskingKey([9, 8, 7, 6])!
        var masked = ByteBuffer(bytes: Array("hello, stdin".utf8))
        masked.webSocketMask(key)
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: masked)
        #expect(WebSocketUnmasking.unmaskedData(frame) == ByteBuffer(string: "hello, stdin"))
        let plain = WebSocketFrame(fin: true, opcode: .binary, data: ByteBuffer(string: "server side"))
        #expect(WebSocketUnmasking.unmaskedData(plain) == ByteBuffer(string: "server side"))
        var withExtension = ByteBuffer(bytes: Array("payload after 3 bytes".utf8))
        withExtension.webSocketMask(key, indexOffset: 3)
        let extended = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: withExtension, extensionData: ByteBuffer(bytes: [0, 0, 0]))
        #expect(WebSocketUnmasking.unmaskedData(extended) == extended.unmaskedData)
    }
}

/// The client's frame writer produces what NIOWebSocket's encoder produces, for masked and
/// unmasked frames of every length class.
@Suite struct WebSocketFrameWriterTests {
    static func nio(_ frame: WebSocketFrame) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: WebSocketFrameEncoder())
        try channel.writeOutbound(frame)
        var out: [UInt8] = []
        while var b = try channel.readOutbound(as: ByteBuffer.self) { out += b.readBytes(length: b.readableBytes) ?? [] }
        _ = try channel.finish()
        return out
    }

    @Test(arguments: [0, 5, 125, 126, 127, 65_535, 65_536, 200_003])
    func framesMatchNIOsEncoder(_ length: Int) throws {
        let payload = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let key = WebSocketMaskingKey([0xA1, 0x02, 0xF3, 0x44])!
        for frame in [
            WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: payload),
            WebSocketFrame(fin: false, opcode: .text, data: payload),
            WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: key, data: payload, extensionData: ByteBuffer(bytes: [7, 7, 7])),
        ] {
            var (header, body) = WebSocketFrameWriter.encode(frame, allocator: ByteBufferAllocator())
            let ours = (header.readBytes(length: header.readableBytes) ?? []) + (body.readBytes(length: body.readableBytes) ?? [])
            #expect(try ours == Self.nio(frame), "length \(length), opcode \(frame.opcode), masked \(frame.maskKey != nil)")
        }
    }
}
