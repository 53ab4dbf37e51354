public import CrispCore
public import CrispOCI
public import CrispOS
import Foundation
import Glibc

/// A command started in a container for a streaming exec session. The caller takes the
/// descriptors (and closes them); `wait` reaps the runtime process and removes the scratch
/// directory; `terminate` kills the command when the client went away.
public final class StreamedExec: Sendable {
    /// Write end of the command's stdin (pipe), or the terminal master when `tty`.
    public let stdin: Int32?
    /// Read ends of the command's stdout and stderr; nil when not requested, or for a tty.
    public let stdout: Int32?
    public let stderr: Int32?
    /// The terminal master (read and write) for a tty session.
    public let terminal: Int32?
    let child: SpawnedChild
    let pidFile: String
    let directory: String

    init(stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32?, child: SpawnedChild, pidFile: String, directory: String) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
        self.child = child
        self.pidFile = pidFile
        self.directory = directory
    }

    /// The command's exit status (the runtime exits with it; 128+N for a signal).
    public func wait() async -> Int32 {
        let status = await child.wait()
        try? FileManager.default.removeItem(atPath: directory)
        return status
    }

    /// Resizes the terminal. runc copies between its own stdio (our slave) and the container's
    /// terminal and resizes the latter from the former on SIGWINCH; it is not in our terminal's
    /// session, so the kernel does not send that signal itself.
    public func resize(columns: UInt16, rows: UInt16) {
        guard let terminal else { return }
        PseudoTerminal.setWindowSize(terminal, columns: columns, rows: rows)
        child.signal(SIGWINCH)
    }

    /// Kills the command (by the PID runc wrote) and runc itself; `wait` then returns.
    public func terminate() {
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
           let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
            Glibc.kill(pid, SIGKILL)
        }
        child.signal(SIGKILL)
    }
}

extension ConmonRuntime {
    /// Starts `process` in container `id` through `runc exec`, with pipes for the requested
    /// streams or a pseudo-terminal (as CRI-O does: the runtime runs in the foreground with the
    /// terminal's slave as its stdio).
    public func startExec(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process,
                          tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> StreamedExec {
        let dir = try scratch("exec")
        var p = process
        p.terminal = tty ? true : nil
        let processFile = dir + "/process.json", pidFile = dir + "/pid"
        var opened: [Int32] = []
        func cleanUp() {
            opened.forEach { close($0) }
            try? FileManager.default.removeItem(atPath: dir)
        }
        do {
            try Bundle.writeJSON(p, to: processFile, durable: false)
            var o = Spawn.Options(path: handler.path,
                                  arguments: handler.globalArguments + ["exec", "--process", processFile, "--pid-file", pidFile, id])
            var childEnds: [Int32] = []
            var ours: (stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32?) = (nil, nil, nil, nil)
            if tty {
                let pty = try PseudoTerminal.open()
                opened += [pty.master, pty.slave]
                // runc reads the initial size from its stdio; a client resizes right after.
                PseudoTerminal.setWindowSize(pty.master, columns: 80, rows: 24)
                for fd in Int32(0)...2 { o.descriptors[fd] = pty.slave }
                childEnds = [pty.slave]
                ours.terminal = pty.master
            } else {
                if stdin {
                    let pipe = try Pipe2()
                    opened += [pipe.read, pipe.write]
                    o.descriptors[0] = pipe.read
                    childEnds.append(pipe.read)
                    ours.stdin = pipe.write
                }
                for (fd, wanted) in [(Int32(1), stdout), (Int32(2), stderr)] where wanted {
                    let pipe = try Pipe2()
                    opened += [pipe.read, pipe.write]
                    o.descriptors[fd] = pipe.write
                    childEnds.append(pipe.write)
                    if fd == 1 { ours.stdout = pipe.read } else { ours.stderr = pipe.read }
                }
            }
            let child = try Spawn.start(o)
            childEnds.forEach { close($0) }
            return StreamedExec(stdin: ours.stdin, stdout: ours.stdout, stderr: ours.stderr, terminal: ours.terminal,
                                child: child, pidFile: pidFile, directory: dir)
        } catch {
            cleanUp()
            throw error
        }
    }
}
