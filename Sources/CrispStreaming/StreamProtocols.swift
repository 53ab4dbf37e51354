/// The sub-protocols of Kubernetes' streaming API, and how one is chosen: the first protocol the
/// client lists that the server supports (k8s.io/apimachinery httpstream's rule).
enum StreamProtocol: String, CaseIterable, Sendable {
    // remote command over SPDY
    case v4 = "v4.channel.k8s.io"
    case v3 = "v3.channel.k8s.io"
    case v2 = "v2.channel.k8s.io"
    case v1 = "channel.k8s.io"
    // remote command over WebSocket
    case wsV5 = "v5.channel.k8s.io"
    case wsV4Base64 = "v4.base64.channel.k8s.io"
    case wsBase64 = "base64.channel.k8s.io"
    // port forward
    case portForward = "portforward.k8s.io"
    case wsPortForwardV4 = "v4.portforward.k8s.io"
    /// SPDY port forwarding tunnelled through WebSocket binary messages (client-go ≥ 1.30).
    case wsSPDYPortForward = "SPDY/3.1+portforward.k8s.io"

    static let spdyRemoteCommand: [StreamProtocol] = [.v4, .v3, .v2, .v1]
    static let spdyPortForward: [StreamProtocol] = [.portForward]
    /// `v4.channel.k8s.io` and `channel.k8s.io` are also WebSocket protocols (binary channels).
    static let webSocketRemoteCommand: [StreamProtocol] = [.wsV5, .v4, .wsV4Base64, .v1, .wsBase64]
    static let webSocketPortForward: [StreamProtocol] = [.wsSPDYPortForward, .wsPortForwardV4]

    /// `nil` if nothing matches. An empty client list means the oldest protocol, as in Kubernetes.
    static func negotiate(client: [String], server: [StreamProtocol]) -> StreamProtocol? {
        let offered = client.flatMap { $0.split(separator: ",") }.map(trimmedHeaderItem).filter { !$0.isEmpty }
        if offered.isEmpty { return server.last }
        for name in offered { if let p = server.first(where: { $0.rawValue == name }) { return p } }
        return nil
    }

    /// Structured status on the error stream (v4 and later); plain text before.
    var sendsStatusJSON: Bool { self == .v4 || self == .wsV5 || self == .wsV4Base64 }
    /// A resize stream exists (v3 and later).
    var supportsResize: Bool { self != .v1 && self != .v2 && self != .wsBase64 }
    var isBase64: Bool { self == .wsBase64 || self == .wsV4Base64 }
}

/// Without the spaces and tabs around it (header list items are `a, b`).
func trimmedHeaderItem(_ s: Substring) -> String {
    var s = s
    while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" { s.removeLast() }
    return String(s)
}
