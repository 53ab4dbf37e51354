public import CrispCore

/// What an exec URL was issued for.
public struct ExecRequest: Sendable, Equatable {
    public var containerID: String
    public var command: [String]
    public var tty: Bool
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool

    public init(containerID: String, command: [String], tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) {
        self.containerID = containerID
        self.command = command
        self.tty = tty
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// What an attach URL was issued for.
public struct AttachRequest: Sendable, Equatable {
    public var containerID: String
    public var tty: Bool
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool

    public init(containerID: String, tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) {
        self.containerID = containerID
        self.tty = tty
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// What a port-forward URL was issued for. `ports` empty: the client names the ports.
public struct PortForwardRequest: Sendable, Equatable {
    public var podID: String
    public var ports: [Int32]

    public init(podID: String, ports: [Int32]) {
        self.podID = podID
        self.ports = ports
    }
}

/// A command running for an exec session. The streaming server takes the descriptors (it closes
/// them); `wait` returns the exit status; `terminate` kills the command when the client is gone.
public struct StreamedProcess: Sendable {
    /// Write end of stdin; for a terminal, the terminal itself (read and write).
    public var stdin: Int32?
    public var stdout: Int32?
    public var stderr: Int32?
    /// The terminal (master side) when the session has a tty; stdin/stdout/stderr are then nil.
    public var terminal: Int32?
    public var resize: @Sendable (_ columns: UInt16, _ rows: UInt16) -> Void
    public var wait: @Sendable () async -> Int32
    public var terminate: @Sendable () -> Void

    public init(stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32?,
                resize: @escaping @Sendable (UInt16, UInt16) -> Void,
                wait: @escaping @Sendable () async -> Int32, terminate: @escaping @Sendable () -> Void) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
        self.resize = resize
        self.wait = wait
        self.terminate = terminate
    }
}

/// A connection to a container's main process (conmon's attach socket): SOCK_SEQPACKET, each
/// message from conmon starts with one byte naming the pipe (2 stdout, 3 stderr); what is
/// written to it is the container's stdin; shutting down the write side closes that stdin when
/// the container was created with stdin_once.
public struct AttachedProcess: Sendable {
    public var socket: Int32
    public var tty: Bool
    /// The container keeps its stdin open for attach.
    public var stdin: Bool
    public var stdinOnce: Bool
    public var resize: @Sendable (_ columns: UInt16, _ rows: UInt16) -> Void

    public init(socket: Int32, tty: Bool, stdin: Bool, stdinOnce: Bool, resize: @escaping @Sendable (UInt16, UInt16) -> Void) {
        self.socket = socket
        self.tty = tty
        self.stdin = stdin
        self.stdinOnce = stdinOnce
        self.resize = resize
    }
}

/// The streaming server's only view of the runtime: crispd wires it to the container and pod
/// services. Each call re-checks the container or pod, which may be gone since the URL was issued.
public protocol StreamingBackend: Sendable {
    func exec(_ request: ExecRequest) async throws(CrispError) -> StreamedProcess
    func attach(_ request: AttachRequest) async throws(CrispError) -> AttachedProcess
    /// A connected TCP socket to 127.0.0.1:`port` in the pod's network namespace; the caller owns it.
    func dial(podID: String, port: Int) async throws(CrispError) -> Int32
}
