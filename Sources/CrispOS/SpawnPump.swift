import CCrispShim
import Glibc

/// Moves a running child's stdio on one thread blocked in poll(2): writes its stdin, reads its
/// stdout and stderr, and watches its pidfd. Once the child has exited, what it wrote is already
/// in the pipes: that is drained without waiting for EOF, which a grandchild still holding the
/// pipe (a daemon the child started) could put off for ever. Owns the descriptors it is given.
struct OutputPump: Sendable {
    struct Captured: Sendable {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var stdoutTruncated = false
        var stderrTruncated = false
    }

    let child: Int32
    let stdout: Int32
    let stderr: Int32
    let stdin: Int32?
    let input: [UInt8]
    let cap: Int

    init(child: Int32, stdout: Int32, stderr: Int32, stdin: Int32?, input: [UInt8], cap: Int) {
        (self.child, self.stdout, self.stderr, self.stdin, self.input, self.cap) = (child, stdout, stderr, stdin, input, cap)
    }

    /// Blocks until the child has exited and its output is drained.
    func run() -> Captured {
        // A write to a pipe the child closed raises SIGPIPE in the writing thread: blocked here,
        // it stays pending on this thread (discarded when it ends) and write fails with EPIPE.
        var pipeSignal = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previousMask)
        defer {
            var now = timespec()
            while sigtimedwait(&pipeSignal, nil, &now) > 0 {}
            pthread_sigmask(SIG_SETMASK, &previousMask, nil)
        }
        var captured = Captured()
        var readers: [Int32] = [stdout, stderr]
        var writer = stdin
        var written = 0
        for fd in readers + (writer.map { [$0] } ?? []) { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        if let w = writer, input.isEmpty { close(w); writer = nil }
        var exited = false
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !readers.isEmpty || !exited {
            var fds = readers.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if !exited { fds.append(pollfd(fd: child, events: Int16(POLLIN), revents: 0)) }
            if let w = writer { fds.append(pollfd(fd: w, events: Int16(POLLOUT), revents: 0)) }
            if poll(&fds, nfds_t(fds.count), exited ? 0 : -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if !exited, fds.contains(where: { $0.fd == child && $0.revents != 0 }) { exited = true }
            if let w = writer, let p = fds.first(where: { $0.fd == w }), p.revents != 0 {
                let n = input.withUnsafeBytes { Glibc.write(w, $0.baseAddress! + written, $0.count - written) }
                if n > 0 { written += n }
                if written == input.count || (n < 0 && errno != EAGAIN && errno != EINTR) {
                    close(w)
                    writer = nil
                }
            }
            for p in fds where readers.contains(p.fd) && (p.revents != 0 || exited) {
                // Read until the pipe is empty; after the exit, an empty pipe is the end.
                while true {
                    let n = chunk.withUnsafeMutableBytes { Glibc.read(p.fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n > 0 {
                        append(chunk[0..<n], to: p.fd == stdout ? \.stdout : \.stderr,
                               truncated: p.fd == stdout ? \.stdoutTruncated : \.stderrTruncated, in: &captured)
                        continue
                    }
                    if n == 0 || errno != EAGAIN || exited {
                        close(p.fd)
                        readers.removeAll { $0 == p.fd }
                    }
                    break
                }
            }
        }
        if let w = writer { close(w) }
        readers.forEach { close($0) }
        return captured
    }

    private func append(_ bytes: ArraySlice<UInt8>, to buffer: WritableKeyPath<Captured, [UInt8]>,
                        truncated: WritableKeyPath<Captured, Bool>, in c: inout Captured) {
        let room = cap - c[keyPath: buffer].count
        if room > 0 { c[keyPath: buffer] += bytes.prefix(room) }
        if bytes.count > room { c[keyPath: truncated] = true }
    }
}
