public import CrispCore
public import CrispRuntime
public import CrispOCI
import Foundation

/// What the streaming server needs to attach to a container's main process through conmon.
public struct AttachTarget: Sendable, Equatable {
    public var containerID: String
    /// conmon's SOCK_SEQPACKET attach socket; with `--full-attach` conmon makes it in the bundle.
    public var socketPath: String
    /// conmon's control FIFO in the bundle: `1 ROWS COLS` resizes the container's terminal.
    public var controlPath: String
    public var tty: Bool
    /// conmon keeps the container's stdin open (`stdin: true` at create).
    public var stdin: Bool
    public var stdinOnce: Bool
}

extension ContainerService {
    /// Checks what Exec asks for before a URL is handed out: the kubelet expects the errors here,
    /// not when the client connects.
    public func validateExec(_ id: String, command: [String], tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> String {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        guard !command.isEmpty else { throw .invalidArgument("exec needs a command") }
        try Self.checkStreams(tty: tty, stdin: stdin, stdout: stdout, stderr: stderr)
        return c.id
    }

    public func validateAttach(_ id: String, tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> String {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        try Self.checkStreams(tty: tty, stdin: stdin, stdout: stdout, stderr: stderr)
        return c.id
    }

    static func checkStreams(tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) {
        guard stdin || stdout || stderr else { throw .invalidArgument("one of stdin, stdout or stderr must be set") }
        // With a terminal, stdout and stderr are one stream; the kubelet never asks for both.
        guard !(tty && stderr) else { throw .invalidArgument("tty and stderr cannot both be set: a terminal has no separate stderr") }
    }

    /// Starts `command` in the running container with its process spec (user, environment,
    /// capabilities), for a streaming session.
    public func startExec(_ id: String, command: [String], tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> StreamedExec {
        let (c, process) = try execTarget(id, command: command)
        return try runtime.startExec(id: c.id, handler: try handler(c.runtimeHandler), process: process,
                                     tty: tty, stdin: stdin, stdout: stdout, stderr: stderr)
    }

    /// Where conmon serves the container's stdio.
    public func attachTarget(_ id: String) throws(CrispError) -> AttachTarget {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        let tty = (try? JSONDecoder().decode(RuntimeSpec.Process.self, from: c.processJSON))?.terminal ?? false
        return AttachTarget(containerID: c.id, socketPath: c.bundle + "/attach",
                            controlPath: c.bundle + "/ctl", tty: tty, stdin: c.stdin ?? false, stdinOnce: c.stdinOnce ?? false)
    }
}
