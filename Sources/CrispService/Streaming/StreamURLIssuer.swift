/// A streaming session the kubelet asked for, once the request has been checked.
public enum StreamSession: Sendable, Equatable {
    case exec(containerID: String, command: [String], tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool)
    case attach(containerID: String, tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool)
    case portForward(podID: String, ports: [Int32])
}

/// Hands out the single-use URLs Exec, Attach and PortForward answer with; crispd's streaming
/// server is the real one.
public protocol StreamURLIssuer: Sendable {
    func url(for session: StreamSession) -> String
    /// Where the server listens, for verbose Status.
    var baseURL: String { get }
    var connectionCount: Int { get }
}
