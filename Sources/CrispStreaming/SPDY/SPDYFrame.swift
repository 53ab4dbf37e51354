// SPDY/3.1 framing, written by hand: Kubernetes still runs exec, attach and port-forward over
// SPDY/3.1 (the kubelet and kubectl speak it through github.com/moby/spdystream), and there is
// no Swift SPDY library to lean on. spdystream is the peer we must interoperate with, so where
// the draft spec is vague its behaviour is the reference.

import NIOCore

/// A SPDY/3 name/value header block. Kept as ordered pairs rather than a dictionary because the
/// block is ordered on the wire and Kubernetes reads single values by name anyway.
struct SPDYHeaders: Sendable, Equatable {
    var pairs: [(name: String, value: String)]

    /// Names are stored lowercased: SPDY/3 forbids uppercase names on the wire.
    init(_ pairs: [(String, String)] = []) {
        self.pairs = pairs.map { (name: $0.0.lowercased(), value: $0.1) }
    }

    subscript(name: String) -> String? {
        let wanted = name.lowercased()
        return pairs.first { $0.name.lowercased() == wanted }?.value
    }

    static func == (lhs: SPDYHeaders, rhs: SPDYHeaders) -> Bool {
        lhs.pairs.count == rhs.pairs.count
            && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.name.lowercased() == $1.name.lowercased() && $0.value == $1.value }
    }
}

/// One SETTINGS entry; `id` is 24 bits on the wire.
struct SPDYSetting: Sendable, Equatable {
    var flags: UInt8
    var id: UInt32
    var value: UInt32
}

enum SPDYFrame: Sendable, Equatable {
    case data(streamID: UInt32, fin: Bool, payload: ByteBuffer)
    case synStream(streamID: UInt32, associatedStreamID: UInt32, priority: UInt8, fin: Bool, unidirectional: Bool, headers: SPDYHeaders)
    case synReply(streamID: UInt32, fin: Bool, headers: SPDYHeaders)
    case rstStream(streamID: UInt32, status: UInt32)
    case settings(clearPrevious: Bool, entries: [SPDYSetting])
    case ping(id: UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, fin: Bool, headers: SPDYHeaders)
    case windowUpdate(streamID: UInt32, delta: UInt32)
}

/// RST_STREAM status codes (SPDY/3 section 2.6.3).
enum SPDYRstStatus {
    static let protocolError: UInt32 = 1
    static let invalidStream: UInt32 = 2
    static let refusedStream: UInt32 = 3
    static let unsupportedVersion: UInt32 = 4
    static let cancel: UInt32 = 5
    static let internalError: UInt32 = 6
    static let flowControlError: UInt32 = 7
    static let streamInUse: UInt32 = 8
    static let streamAlreadyClosed: UInt32 = 9
    static let invalidCredentials: UInt32 = 10
    static let frameTooLarge: UInt32 = 11
}

/// GOAWAY status codes (SPDY/3 section 2.6.6).
enum SPDYGoAwayStatus {
    static let ok: UInt32 = 0
    static let protocolError: UInt32 = 1
    static let internalError: UInt32 = 2
}

/// Everything that makes a SPDY connection unusable. Header compression shares one zlib context
/// per direction for the whole connection, so after any of these the byte stream cannot be
/// resynchronised and the connection has to go.
enum SPDYProtocolError: Error, Equatable {
    /// A control frame carried a version other than 3.
    case unsupportedVersion(UInt16)
    /// A control frame's length does not fit what its type needs.
    case invalidFrameLength(type: UInt16, length: Int)
    /// The decompressed name/value block ended in the middle of a field.
    case truncatedHeaderBlock
    /// The name/value block claims more pairs than its bytes could hold.
    case headerCountTooLarge(UInt32)
    /// Bytes were left over after the last name/value pair.
    case trailingHeaderBlockBytes(Int)
    /// A header block over `limit` bytes, decompressed (zlib-bomb guard) or about to be compressed.
    case headerBlockTooLarge(limit: Int)
    /// zlib returned this code (Z_DATA_ERROR for a wrong dictionary or corrupt input, ...).
    case zlibFailure(code: Int32)
    /// A frame to encode would not fit the 24-bit length field.
    case frameTooLarge(length: Int)
    /// A field to encode is wider than its slot on the wire (31-bit ids, 3-bit priority, ...).
    case valueOutOfRange(field: String, value: UInt32)
}
