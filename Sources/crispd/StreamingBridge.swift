public import CrispCore
import CrispOS
import CrispRuntime
public import CrispService
public import CrispStreaming

/// The streaming server's backend: exec and attach through the container service, port
/// forwarding through the pod service.
struct ServiceStreamingBackend: StreamingBackend {
    let containers: ContainerService
    let sandboxes: SandboxService

    init(containers: ContainerService, sandboxes: SandboxService) {
        self.containers = containers
        self.sandboxes = sandboxes
    }

    func exec(_ r: ExecRequest) async throws(CrispError) -> StreamedProcess {
        let e = try await containers.startExec(r.containerID, command: r.command, tty: r.tty, stdin: r.stdin,
                                               stdout: r.stdout, stderr: r.stderr)
        return StreamedProcess(stdin: e.stdin, stdout: e.stdout, stderr: e.stderr, terminal: e.terminal,
                               resize: { e.resize(columns: $0, rows: $1) }, wait: { await e.wait() }, terminate: { e.terminate() })
    }

    func attach(_ r: AttachRequest) async throws(CrispError) -> AttachedProcess {
        let t = try await containers.attachTarget(r.containerID)
        let socket = try UnixSocket.connect(path: t.socketPath, seqpacket: true)
        let control = t.controlPath
        return AttachedProcess(socket: socket, tty: t.tty, stdin: t.stdin, stdinOnce: t.stdinOnce,
                               resize: { ContainerService.resizeAttachedTerminal(control: control, columns: $0, rows: $1) })
    }

    func dial(podID: String, port: Int) async throws(CrispError) -> Int32 {
        try await sandboxes.dialPort(podID, port: port)
    }
}

/// The streaming server as the CRI edge sees it: URLs for checked sessions.
extension StreamingServer: StreamURLIssuer {
    public func url(for session: StreamSession) -> String {
        switch session {
        case let .exec(id, command, tty, stdin, stdout, stderr):
            url(for: .exec(ExecRequest(containerID: id, command: command, tty: tty, stdin: stdin, stdout: stdout, stderr: stderr)))
        case let .attach(id, tty, stdin, stdout, stderr):
            url(for: .attach(AttachRequest(containerID: id, tty: tty, stdin: stdin, stdout: stdout, stderr: stderr)))
        case let .portForward(podID, ports):
            url(for: .portForward(PortForwardRequest(podID: podID, ports: ports)))
        }
    }
}
