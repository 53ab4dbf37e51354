import Foundation
import Glibc
import NIOCore
import NIOHPACK

/// A deliberately small HTTP/2 client over a unix socket that writes and reads frames one by one,
/// so that a test can send what grpc-go sends (a PING with every WINDOW_UPDATE) at the moments
/// it chooses, and see every frame the server answers with, GOAWAY included. Headers go through
/// NIOHPACK; the framing (RFC 9113 §4) is written out here, since a full client library would
/// hide exactly the frames a test needs to control.
public final class RawHTTP2Client {
    public struct Frame: Sendable, CustomStringConvertible {
        public var type: UInt8
        public var flags: UInt8
        public var streamID: UInt32
        public var payload: [UInt8]

        public init(type: UInt8, flags: UInt8 = 0, streamID: UInt32, payload: [UInt8] = []) {
            self.type = type
            self.flags = flags
            self.streamID = streamID
            self.payload = payload
        }

        public static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4,
                          ping: UInt8 = 6, goAway: UInt8 = 7, windowUpdate: UInt8 = 8
        public static let endStream: UInt8 = 0x1, ack: UInt8 = 0x1, endHeaders: UInt8 = 0x4

        public var description: String { "frame(type \(type), flags \(flags), stream \(streamID), \(payload.count) bytes)" }

        /// GOAWAY: the last stream the server says it processed, and its error code.
        public var goAway: (lastStreamID: UInt32, errorCode: UInt32)? {
            guard type == Self.goAway, payload.count >= 8 else { return nil }
            return (Self.uint32(payload, 0) & 0x7fff_ffff, Self.uint32(payload, 4))
        }

        static func uint32(_ b: [UInt8], _ at: Int) -> UInt32 {
            UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
        }
    }

    public enum ClientError: Error { case connect(String, Int32), io(Int32), closed }

    private let fd: Int32
    private var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
    private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())

    public init(unixSocket path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ClientError.connect(path, errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else {
            let e = errno
            close(fd)
            throw ClientError.connect(path, e)
        }
        try writeAll(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8))
        try send(Frame(type: Frame.settings, streamID: 0))
    }

    deinit { close(fd) }

    /// Closes the socket for writing and reading: the server sees the client go away.
    public func shutdownConnection() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    public func send(_ frame: Frame) throws { try send([frame]) }

    /// Writes the frames with one system call, so that the server reads them in one batch (as it
    /// does from a busy client): a PING right behind a new stream's HEADERS, for instance.
    public func send(_ frames: [Frame]) throws {
        var bytes: [UInt8] = []
        for frame in frames {
            let n = frame.payload.count
            bytes += [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), frame.type, frame.flags]
            bytes += withUnsafeBytes(of: (frame.streamID & 0x7fff_ffff).bigEndian) { Array($0) }
            bytes += frame.payload
        }
        try writeAll(bytes)
    }

    /// Reads the next frame; nil when the server closed the connection.
    public func readFrame() throws -> Frame? {
        guard let header = try readExactly(9) else { return nil }
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        guard let payload = length == 0 ? [] : try readExactly(length) else { return nil }
        return Frame(type: header[3], flags: header[4], streamID: Frame.uint32(header, 5) & 0x7fff_ffff, payload: payload)
    }

    /// A gRPC unary request on `stream`: HEADERS, then one length-prefixed message with END_STREAM.
    public func sendUnary(stream: UInt32, path: String, message: [UInt8]) throws {
        try send(unaryFrames(stream: stream, path: path, message: message))
    }

    /// The frames of a unary request; HPACK state advances, so send them in the order made.
    public func unaryFrames(stream: UInt32, path: String, message: [UInt8]) throws -> [Frame] {
        var block = ByteBuffer()
        let headers = HPACKHeaders([(":method", "POST"), (":scheme", "http"), (":path", path),
                                    (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")])
        try encoder.encode(headers: headers, to: &block)
        let n = UInt32(message.count)
        let prefix: [UInt8] = [0, UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
        return [Frame(type: Frame.headers, flags: Frame.endHeaders, streamID: stream, payload: Array(block.readableBytesView)),
                Frame(type: Frame.data, flags: Frame.endStream, streamID: stream, payload: prefix + message)]
    }

    public func sendPing(_ value: UInt64) throws { try send(Self.ping(value)) }

    public func sendWindowUpdate(stream: UInt32 = 0, increment: UInt32) throws {
        try send(Self.windowUpdate(stream: stream, increment: increment))
    }

    public static func ping(_ value: UInt64) -> Frame {
        Frame(type: Frame.ping, streamID: 0, payload: withUnsafeBytes(of: value.bigEndian) { Array($0) })
    }

    public static func windowUpdate(stream: UInt32 = 0, increment: UInt32) -> Frame {
        Frame(type: Frame.windowUpdate, streamID: stream, payload: withUnsafeBytes(of: increment.bigEndian) { Array($0) })
    }

    /// Answers the server's SETTINGS and PINGs as any client must.
    public func acknowledge(_ frame: Frame) throws {
        if frame.type == Frame.settings && frame.flags & Frame.ack == 0 {
            try send(Frame(type: Frame.settings, flags: Frame.ack, streamID: 0))
        } else if frame.type == Frame.ping && frame.flags & Frame.ack == 0 {
            try send(Frame(type: Frame.ping, flags: Frame.ack, streamID: 0, payload: frame.payload))
        }
    }

    /// The header fields of a HEADERS frame (responses and trailers; no CONTINUATION support,
    /// which gRPC servers do not need for headers this small).
    public func decodeHeaders(_ frame: Frame) throws -> [String: String] {
        var buffer = ByteBuffer(bytes: frame.payload)
        let headers = try decoder.decodeHeaders(from: &buffer)
        var out: [String: String] = [:]
        for (name, value, _) in headers { out[name] = value }
        return out
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError.io(errno)
            }
            offset += n
        }
    }

    private func readExactly(_ count: Int) throws -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = out[offset...].withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return nil }
                throw ClientError.io(errno)
            }
            offset += n
        }
        return out
    }
}
