import CrispCore
import CrispOS
@testable import CrispStreaming
import Glibc
import Synchronization

/// A backend without containers: exec runs the command on the host (pipes, or a terminal as the
/// real runtime gives one), attach talks to an in-process "conmon" that echoes stdin back as
/// stdout messages, and dial connects to host loopback. It lets the server's protocol and
/// session logic be tested without root, runc or conmon.
final class FakeStreamingBackend: StreamingBackend {
    /// PIDs of the commands started, to check that none outlives its session.
    let started = Mutex<[Int32]>([])

    func exec(_ r: ExecRequest) async throws(CrispError) -> StreamedProcess {
        guard r.containerID == "c1" else { throw .notFound("container \(r.containerID) not found") }
        var o = Spawn.Options(path: "/bin/sh", arguments: ["-c", r.command.joined(separator: " ")])
        var ours: (stdin: Int32?, stdout: Int32?, stderr: Int32?, terminal: Int32?) = (nil, nil, nil, nil)
        var childEnds: [Int32] = []
        if r.tty {
            let pty = try PseudoTerminal.open()
            PseudoTerminal.setWindowSize(pty.master, columns: 80, rows: 24)
            for fd in Int32(0)...2 { o.descriptors[fd] = pty.slave }
            childEnds = [pty.slave]
            ours.terminal = pty.master
        } else {
            if r.stdin {
                let p = try Pipe2()
                o.descriptors[0] = p.read
                childEnds.append(p.read)
                ours.stdin = p.write
            }
            if r.stdout {
                let p = try Pipe2()
                o.descriptors[1] = p.write
                childEnds.append(p.write)
                ours.stdout = p.read
            }
            if r.stderr {
                let p = try Pipe2()
                o.descriptors[2] = p.write
                childEnds.append(p.write)
                ours.stderr = p.read
            }
        }
        let child = try Spawn.start(o)
        childEnds.forEach { close($0) }
        started.withLock { $0.append(child.pid) }
        let terminal = ours.terminal
        return StreamedProcess(stdin: ours.stdin, stdout: ours.stdout, stderr: ours.stderr, terminal: terminal,
                               resize: { c, r in if let terminal { PseudoTerminal.setWindowSize(terminal, columns: c, rows: r) } },
                               wait: { await child.wait() }, terminate: { child.signal(SIGKILL) })
    }

    /// The fake conmon: every stdin message comes back as a stdout message (prefix 2); "err:"
    /// lines come back on stderr (prefix 3); end of stdin closes the socket.
    func attach(_ r: AttachRequest) async throws(CrispError) -> AttachedProcess {
        var sv: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv) == 0 else {
            throw .internal("socketpair failed")
        }
        let conmon = sv[1]
        startThread(name: "fake-conmon") {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(conmon, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                let text = Array(buffer[0..<n])
                let pipe: UInt8 = text.starts(with: Array("err:".utf8)) ? 3 : 2
                let message = [pipe] + text
                _ = message.withUnsafeBytes { send(conmon, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            close(conmon)
        }
        return AttachedProcess(socket: sv[0], tty: r.tty, stdin: true, stdinOnce: true, resize: { _, _ in })
    }

    func dial(podID: String, port: Int) async throws(CrispError) -> Int32 {
        try TCPLoopback.connect(port: port)
    }
}
