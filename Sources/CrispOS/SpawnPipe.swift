public import CrispCore
import CCrispShim
import Glibc

/// When `fd` is a pipe, lets it hold `bytes` (capped by /proc/sys/fs/pipe-max-size), so a
/// reader gets larger pieces; false when it is not a pipe or the size was refused.
@discardableResult
public func enlargePipe(_ fd: Int32, to bytes: Int32) -> Bool {
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFIFO else { return false }
    return crisp_set_pipe_size(fd, bytes) >= 0
}

/// A close-on-exec pipe whose ends are plain descriptors.
public final class Pipe2: Sendable {
    public let read: Int32
    public let write: Int32

    public init() throws(CrispError) {
        var fds: [Int32] = [0, 0]
        guard crisp_pipe_cloexec(&fds) == 0 else {
            throw CrispError(.internal, "cannot create a pipe", cause: SystemCallError("pipe2", "", errno: errno))
        }
        read = fds[0]
        write = fds[1]
    }

    public func closeWrite() { close(write) }
    public func closeRead() { close(read) }
    public func closeBoth() { close(read); close(write) }

    /// Reads one newline-terminated line (or up to EOF), blocking. conmon keeps its end of the
    /// sync pipe open for its whole life, so reading to EOF would wait for the container to exit.
    public func readLine(cap: Int = 1 << 20) -> [UInt8] {
        var out: [UInt8] = []
        var byte: UInt8 = 0
        while out.count < cap {
            let n = Glibc.read(read, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            out.append(byte)
        }
        return out
    }
}
