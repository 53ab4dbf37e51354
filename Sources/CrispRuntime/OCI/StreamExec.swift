public import CrispCore
public import CrispOCI
import CrispOS
import Foundation
import Glibc
import Synchronization

/// A command started in a container for a streaming exec session. The caller takes the
/// descriptors (and closes them); `wait` reaps the command and removes the scratch directory;
/// `terminate` kills the command when the client went away.
///
/// Without a terminal, runc runs detached and the command has crisp's pipes as its own stdio:
/// in the foreground runc would copy every byte through pipes of its own, which costs a third of
/// the path's CPU on a stream. The command is then an orphan that crispd, as subreaper, adopts
/// (`OrphanHold`); `child` is runc until then.
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
    /// Set for a detached runc: the reaper stands back until the command is adopted.
    let hold: OrphanHold?
    /// The adopted command, once runc has exited; nil before, and for a foreground runc.
    private let adopted = Mutex<SpawnedChild?>(nil)

    init(stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32?, child: SpawnedChild, pidFile: String, directory: String,
         hold: OrphanHold? = nil) {
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.terminal = terminal
        self.child = child
        self.pidFile = pidFile
        self.directory = directory
        self.hold = hold
    }

    /// The command's exit status (128+N for a signal); runc's own when it could not start it.
    public func wait() async -> Int32 {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let status = await child.wait()
        guard let hold else { return status }
        // runc has exited, so its command is now this process's child (or a zombie of it).
        let command = status == 0 ? pidFromFile().flatMap { try? hold.adopt($0) } : nil
        hold.release()
        guard status == 0 else { return status }
        guard let command else { return 255 }
        adopted.withLock { $0 = command }
        return await command.wait()
    }

    func pidFromFile() -> Int32? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else { return nil }
        return pid
    }

    /// Resizes the terminal. runc copies between its own stdio (our slave) and the container's
    /// terminal and resizes the latter from the former on SIGWINCH; it is not in our terminal's
    /// session, so the kernel does not send that signal itself.
    public func resize(columns: UInt16, rows: UInt16) {
        guard let terminal else { return }
        PseudoTerminal.setWindowSize(terminal, columns: columns, rows: rows)
        child.signal(SIGWINCH)
    }

    /// Kills the command and runc itself; `wait` then returns. The PID in the pid file is safe
    /// to signal until the command is reaped: it is a child of runc's or of this process.
    public func terminate() {
        if let command = adopted.withLock({ $0 }) {
            command.signal(SIGKILL)
        } else if let pid = pidFromFile() {
            Glibc.kill(pid, SIGKILL)
        }
        child.signal(SIGKILL)
    }
}

extension ConmonRuntime {
    /// A streamed command's pipes hold this much (the default is 64 KiB): a command such as `cat`
    /// and crispd then each move up to 1 MiB per wake-up instead of taking turns every 64 KiB.
    /// It is the most an unprivileged process may ask for (fs.pipe-max-size), and the kernel
    /// only allocates what is buffered.
    static let streamPipeSize: Int32 = 1 << 20

    /// Starts `process` in container `id` through `runc exec`, with pipes for the requested
    /// streams or a pseudo-terminal (as CRI-O does: the runtime runs in the foreground with the
    /// terminal's slave as its stdio). Pipes go to the command itself through a detached runc
    /// when this process is a subreaper (crispd); elsewhere runc stays in the foreground.
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
            let hold = tty ? nil : ChildReaper.holdOrphans()
            var o = Spawn.Options(path: handler.path,
                                  arguments: handler.globalArguments + ["exec"] + (hold == nil ? [] : ["--detach"])
                                      + ["--process", processFile, "--pid-file", pidFile, id])
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
                    _ = enlargePipe(pipe.write, to: Self.streamPipeSize)
                    o.descriptors[0] = pipe.read
                    childEnds.append(pipe.read)
                    ours.stdin = pipe.write
                }
                for (fd, wanted) in [(Int32(1), stdout), (Int32(2), stderr)] where wanted {
                    let pipe = try Pipe2()
                    opened += [pipe.read, pipe.write]
                    _ = enlargePipe(pipe.read, to: Self.streamPipeSize)
                    o.descriptors[fd] = pipe.write
                    childEnds.append(pipe.write)
                    if fd == 1 { ours.stdout = pipe.read } else { ours.stderr = pipe.read }
                }
            }
            let child = try Spawn.start(o)
            childEnds.forEach { close($0) }
            return StreamedExec(stdin: ours.stdin, stdout: ours.stdout, stderr: ours.stderr, terminal: ours.terminal,
                                child: child, pidFile: pidFile, directory: dir, hold: hold)
        } catch {
            cleanUp()
            throw error
        }
    }
}
