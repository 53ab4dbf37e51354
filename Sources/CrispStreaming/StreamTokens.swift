import Synchronization

/// The request a streaming URL stands for.
public enum StreamTarget: Sendable, Equatable {
    case exec(ExecRequest)
    case attach(AttachRequest)
    case portForward(PortForwardRequest)

    var path: String {
        switch self {
        case .exec: "exec"
        case .attach: "attach"
        case .portForward: "portforward"
        }
    }
}

/// Single-use, short-lived tokens for streaming URLs, as the kubelet's streaming server has: a URL
/// is only good once and only for `lifetime`, and at most `capacity` are outstanding (the oldest
/// is dropped first), so a client that asks for URLs and never connects cannot grow the cache.
public final class StreamTokens: Sendable {
    struct Entry {
        var target: StreamTarget
        var expiry: ContinuousClock.Instant
    }

    public let lifetime: Duration
    public let capacity: Int
    private let state = Mutex<(entries: [String: Entry], order: [String])>(([:], []))

    public init(lifetime: Duration = .seconds(60), capacity: Int = 1000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Stores `target` under a new random token (16 bytes, URL-safe base64), good for `lifetime`
    /// (the cache's own when nil).
    public func issue(_ target: StreamTarget, lifetime: Duration? = nil) -> String {
        let token = Self.randomToken()
        let now = ContinuousClock.now
        state.withLock { s in
            // Pruned only when full, so issuing a URL stays O(1) on the RPC path; `order` holds
            // the tokens in issue order, hence in expiry order.
            if s.order.count >= capacity {
                let expired = s.order.prefix { s.entries[$0].map { $0.expiry <= now } ?? true }
                for t in expired { s.entries[t] = nil }
                s.order.removeFirst(expired.count)
            }
            while s.order.count >= capacity, let oldest = s.order.first {
                s.order.removeFirst()
                s.entries[oldest] = nil
            }
            s.entries[token] = Entry(target: target, expiry: now + (lifetime ?? self.lifetime))
            s.order.append(token)
        }
        return token
    }

    /// The target, without using up the token (an upgrade is still being negotiated).
    public func peek(_ token: String, kind: String) -> StreamTarget? {
        state.withLock { s in
            guard let e = s.entries[token], e.expiry > .now, e.target.path == kind else { return nil }
            return e.target
        }
    }

    /// The target, using up the token; nil when unknown, expired, used, or of another kind.
    public func redeem(_ token: String, kind: String) -> StreamTarget? {
        state.withLock { s in
            guard let e = s.entries[token], e.target.path == kind else { return nil }
            s.entries[token] = nil
            s.order.removeAll { $0 == token }
            return e.expiry > .now ? e.target : nil
        }
    }

    public var count: Int { state.withLock { $0.entries.count } }

    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var acc: UInt32 = 0, bits = 0
        for b in bytes {
            acc = (acc << 8) | UInt32(b)
            bits += 8
            while bits >= 6 {
                bits -= 6
                out.append(alphabet[Int((acc >> UInt32(bits)) & 63)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((acc << UInt32(6 - bits)) & 63)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
