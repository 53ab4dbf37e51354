@testable import CrispTransport
import NIOCore
import NIOEmbedded
import Testing

/// The filter on raw bytes: whatever way the client's bytes are cut into reads, every byte but
/// the non-ACK PING frames reaches swift-nio-http2 unchanged and in order, and each PING gets
/// its ACK with the same payload.
@Suite struct PingFrameFilterTests {
    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let n = payload.count
        return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags,
                UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    static let ping1 = frame(type: 6, payload: [1, 2, 3, 4, 5, 6, 7, 8])
    static let ping2 = frame(type: 6, payload: [9, 9, 9, 9, 9, 9, 9, 9])
    static let kept: [[UInt8]] = [
        frame(type: 4, payload: []),                                             // SETTINGS
        frame(type: 1, flags: 4, stream: 1, payload: Array(repeating: 0x82, count: 20)),  // HEADERS
        frame(type: 0, flags: 1, stream: 1, payload: Array(repeating: 7, count: 300)),    // DATA
        frame(type: 6, flags: 1, payload: [0, 0, 0, 0, 0, 0, 0, 1]),            // a PING ACK passes
        frame(type: 8, payload: [0, 0, 0, 5]),                                  // WINDOW_UPDATE
    ]

    @Test(arguments: [1, 2, 5, 9, 17, 64, 10_000])
    func pingsAreAnsweredAndRemovedWhateverTheReadSizes(chunk: Int) throws {
        var pings = 0
        let channel = EmbeddedChannel(handler: PingFrameFilter { _ in pings += 1 })
        let stream = Self.preface + Self.kept[0] + Self.ping1 + Self.kept[1] + Self.kept[2] + Self.ping2
            + Self.kept[3] + Self.kept[4]
        var offset = 0
        while offset < stream.count {
            let end = min(offset + chunk, stream.count)
            try channel.writeInbound(ByteBuffer(bytes: stream[offset..<end]))
            offset = end
        }
        var forwarded: [UInt8] = []
        while let b = try channel.readInbound(as: ByteBuffer.self) { forwarded += Array(b.readableBytesView) }
        #expect(forwarded == Self.preface + Self.kept.flatMap { $0 })
        var acks: [[UInt8]] = []
        while let b = try channel.readOutbound(as: ByteBuffer.self) { acks.append(Array(b.readableBytesView)) }
        var ack1 = Self.ping1, ack2 = Self.ping2
        ack1[4] = 1
        ack2[4] = 1
        #expect(acks == [ack1, ack2])
        #expect(pings == 2)
        _ = try channel.finish()
    }
}
