public import CrispCore
import CCrispShim
import Glibc

/// A pseudo-terminal for `exec -t`: the program gets the slave as stdin/stdout/stderr, the
/// streaming server reads and writes the master. Both ends are close-on-exec; the spawner dup2s
/// the slave onto the child's 0–2, and the caller closes its copy once the child has started.
public struct PseudoTerminal: Sendable {
    public let master: Int32
    public let slave: Int32

    public static func open() throws(CrispError) -> PseudoTerminal {
        var m: Int32 = -1, s: Int32 = -1
        guard crisp_open_pty(&m, &s) == 0 else {
            throw CrispError(.internal, "cannot allocate a pseudo-terminal", cause: SystemCallError("posix_openpt", "/dev/ptmx", errno: errno))
        }
        return PseudoTerminal(master: m, slave: s)
    }

    /// Sets the window size seen through either end (the kernel keeps one size per pair).
    public static func setWindowSize(_ fd: Int32, columns: UInt16, rows: UInt16) {
        _ = crisp_set_window_size(fd, rows, columns)
    }

    public static func windowSize(_ fd: Int32) -> (columns: UInt16, rows: UInt16)? {
        var r: UInt16 = 0, c: UInt16 = 0
        guard crisp_get_window_size(fd, &r, &c) == 0 else { return nil }
        return (c, r)
    }
}
