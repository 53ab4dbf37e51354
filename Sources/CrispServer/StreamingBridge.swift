public import CrispCore
import CrispOS
import CrispRuntime
public import CrispService
public import CrispStreaming
import Glibc

/// The streaming server's backend: exec and attach through the container service, port
/// forwarding through the pod service.
public struct ServiceStreamingBackend: StreamingBackend {
    let containers: ContainerService
    let sandboxes: SandboxService

    public init(containers: ContainerService, sandboxes: SandboxService) {
        self.containers = containers
        self.sandboxes = sandboxes
    }

    public func exec(_ r: ExecRequest) async throws(CrispError) -> StreamedProcess {
        let e = try await containers.startExec(r.containerID, command: r.command, tty: r.tty, stdin: r.stdin,
                                               stdout: r.stdout, stderr: r.stderr)
        return StreamedProcess(stdin: e.stdin, stdout: e.stdout, stderr: e.stderr, terminal: e.terminal,
                               resize: { e.resize(columns: $0, rows: $1) }, wait: { await e.wait() }, terminate: { e.terminate() })
    }

    public func attach(_ r: AttachRequest) async throws(CrispError) -> AttachedProcess {
        let t = try await containers.attachTarget(r.containerID)
        let socket = try UnixSocket.connect(path: t.socketPath, seqpacket: true)
        let control = t.controlPath
        return AttachedProcess(socket: socket, tty: t.tty, stdin: t.stdin, stdinOnce: t.stdinOnce,
                               resize: { Self.resize(control: control, columns: $0, rows: $1) })
    }

    public func dial(podID: String, port: Int) async throws(CrispError) -> Int32 {
        try await sandboxes.dialPort(podID, port: port)
    }

    /// conmon's control FIFO takes `1 ROWS COLS` lines. Opened without blocking: with no conmon
    /// reading (the container is gone) the open fails at once instead of hanging.
    static func resize(control: String, columns: UInt16, rows: UInt16) {
        let fd = open(control, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let line = Array("1 \(rows) \(columns)\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
