import CRIAPI
import CrispCore
import CrispService
import SwiftProtobuf

/// Exec, Attach and PortForward: the request is checked now (the kubelet expects errors here),
/// then answered with a single-use URL on the streaming server.
extension RuntimeService {
    func exec(_ r: Runtime_V1_ExecRequest) async throws -> Runtime_V1_ExecResponse {
        let server = try streamingServer()
        let id = try await containers.validateExec(r.containerID, command: r.cmd, tty: r.tty, stdin: r.stdin,
                                                   stdout: r.stdout, stderr: r.stderr)
        return .with { $0.url = server.url(for: .exec(containerID: id, command: r.cmd, tty: r.tty, stdin: r.stdin,
                                                        stdout: r.stdout, stderr: r.stderr)) }
    }

    func attach(_ r: Runtime_V1_AttachRequest) async throws -> Runtime_V1_AttachResponse {
        let server = try streamingServer()
        let id = try await containers.validateAttach(r.containerID, tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr)
        return .with { $0.url = server.url(for: .attach(containerID: id, tty: r.tty, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr)) }
    }

    func portForward(_ r: Runtime_V1_PortForwardRequest) async throws -> Runtime_V1_PortForwardResponse {
        let server = try streamingServer()
        let id = try await sandboxes.validatePortForward(r.podSandboxID)
        for p in r.port where !(1...65535).contains(p) {
            throw CrispError.invalidArgument("port \(p) is not in 1…65535")
        }
        return .with { $0.url = server.url(for: .portForward(podID: id, ports: r.port)) }
    }

    private func streamingServer() throws(CrispError) -> any StreamURLIssuer {
        guard let streaming else { throw CrispError(.unavailable, "the streaming server is not running") }
        return streaming
    }
}
