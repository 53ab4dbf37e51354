import NIOCore
import NIOWebSocket

/// Unmasking of the frames a WebSocket client sends (RFC 6455 §5.3: every payload byte XORed
/// with the 4-byte key, cycling from the first byte of extension data).
///
/// Why not `WebSocketFrame.unmaskedData`: NIOWebSocket XORs one byte at a time with a modulo
/// per byte. Everything a client streams to crispd goes through it (exec stdin, `kubectl cp`'s
/// tar, port-forward data), and perf showed it as crispd's largest user-space cost while stdin
/// streamed over WebSocket. This XORs eight bytes at a time; the result is the same bytes.
enum WebSocketUnmasking {
    /// The frame's application data, unmasked.
    static func unmaskedData(_ frame: WebSocketFrame) -> ByteBuffer {
        guard let key = frame.maskKey else { return frame.data }
        var data = frame.data
        unmask(&data, key: key, indexOffset: (frame.extensionData?.readableBytes ?? 0) % 4)
        return data
    }

    /// XORs the readable bytes of `buffer` with `key`, as if they started `indexOffset` bytes
    /// into the masked payload.
    static func unmask(_ buffer: inout ByteBuffer, key: WebSocketMaskingKey, indexOffset: Int = 0) {
        let keyBytes = (0..<4).map { key[($0 + indexOffset) % 4] }
        // The key repeated twice, in memory order, so one unaligned 8-byte load lines up with it.
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { p in
            for i in 0..<8 { p[i] = keyBytes[i % 4] }
        }
        buffer.withUnsafeMutableReadableBytes { bytes in
            let count = bytes.count
            var i = 0
            while i + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                bytes.storeBytes(of: word ^ pattern, toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count {
                bytes[i] ^= keyBytes[i % 4]
                i += 1
            }
        }
    }
}
