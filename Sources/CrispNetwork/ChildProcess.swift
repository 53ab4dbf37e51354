import CrispCore
import Foundation
import Glibc
import Synchronization

/// Runs a helper binary (a CNI plugin, crisp-pinns) to completion: feeds stdin, collects stdout
/// and stderr, and kills it (SIGKILL, by its PID) when the timeout passes. The blocking I/O
/// happens on a dedicated thread, never on the cooperative pool; exit is observed through
/// Foundation's termination handler (SIGCHLD), not by polling.
struct ChildProcess {
    struct Output: Sendable {
        var status: Int32
        var stdout: [UInt8]
        var stderr: [UInt8]
        var timedOut: Bool
    }

    var path: String
    var arguments: [String] = []
    var environment: [String: String]
    var stdin: [UInt8] = []
    /// When set, the child's fd 0 is this descriptor instead of a pipe carrying `stdin`.
    var stdinDescriptor: Int32? = nil
    var timeout: Duration

    func run() async throws(CrispError) -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        let outPipe = Pipe(), errPipe = Pipe()
        let inPipe: Pipe? = stdinDescriptor == nil ? Pipe() : nil
        process.standardOutput = outPipe
        process.standardError = errPipe
        if let fd = stdinDescriptor {
            process.standardInput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        } else {
            process.standardInput = inPipe
        }
        let exited = DispatchSemaphore(value: 0)
        // Set as soon as Foundation has reaped the child, so the timeout never signals a PID the
        // kernel may already have handed to another process.
        let finished = Mutex(false)
        process.terminationHandler = { _ in
            finished.withLock { $0 = true }
            exited.signal()
        }
        do {
            try process.run()
        } catch {
            throw CrispError(.internal, "cannot run \(path)", cause: ProcessLaunchError(description: "\(error)"))
        }
        // Our copies of the child's ends must go, or EOF never comes.
        try? outPipe.fileHandleForWriting.close()
        try? errPipe.fileHandleForWriting.close()
        try? inPipe?.fileHandleForReading.close()
        let pid = process.processIdentifier
        let timedOut = Mutex(false)
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout.timeInterval) {
            let live = finished.withLock { !$0 }
            if live {
                timedOut.withLock { $0 = true }
                kill(pid, SIGKILL)
            }
        }
        let input = stdin
        let outFD = outPipe.fileHandleForReading.fileDescriptor
        let errFD = errPipe.fileHandleForReading.fileDescriptor
        let inFD = inPipe?.fileHandleForWriting.fileDescriptor
        let result: Output = await withCheckedContinuation { (cont: CheckedContinuation<Output, Never>) in
            let t = Thread {
                if let inFD {
                    writeAll(inFD, input)
                    try? inPipe?.fileHandleForWriting.close()
                }
                let (out, err) = drain(outFD, errFD)
                exited.wait()
                cont.resume(returning: Output(status: process.terminationStatus, stdout: out, stderr: err,
                                              timedOut: timedOut.withLock { $0 }))
                _ = outPipe; _ = errPipe
            }
            t.name = "crisp-child"
            t.start()
        }
        return result
    }
}

struct ProcessLaunchError: Error, Sendable, CustomStringConvertible {
    var description: String
}

extension Duration {
    var timeInterval: Double {
        let (s, a) = components
        return Double(s) + Double(a) / 1e18
    }
}

private func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
        if n < 0 { if errno == EINTR { continue }; return }  // EPIPE: the child did not read stdin
        off += n
    }
}

/// Reads two descriptors to EOF, blocking in poll(2).
private func drain(_ a: Int32, _ b: Int32) -> ([UInt8], [UInt8]) {
    var bufs: [[UInt8]] = [[], []]
    var open = [true, true]
    let fdsIn = [a, b]
    var chunk = [UInt8](repeating: 0, count: 65536)
    while open[0] || open[1] {
        var fds = (0..<2).map { pollfd(fd: open[$0] ? fdsIn[$0] : -1, events: Int16(POLLIN), revents: 0) }
        let r = poll(&fds, 2, -1)
        if r < 0 { if errno == EINTR { continue }; break }
        for i in 0..<2 where open[i] && fds[i].revents != 0 {
            let n = chunk.withUnsafeMutableBytes { read(fdsIn[i], $0.baseAddress, $0.count) }
            if n > 0 { bufs[i].append(contentsOf: chunk[0..<n]) } else if n == 0 || errno != EINTR { open[i] = false }
        }
    }
    return (bufs[0], bufs[1])
}
