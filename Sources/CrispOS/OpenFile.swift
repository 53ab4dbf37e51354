public import CrispCore
import CCrispShim
import Glibc

/// An open file descriptor owned by one scope: it is closed when the value goes away, so no
/// failure path can leak it. The service layer opens files only through this type.
public struct OpenFile: ~Copyable {
    public let fd: Int32
    public let path: String

    public enum Mode: Sendable {
        case read
        /// Creates the file; fails with EEXIST when it exists.
        case createNew(permissions: UInt32)
        /// Write-only without blocking: opening a FIFO no one reads fails (ENXIO) at once.
        case writeNonBlocking
    }

    public init(_ path: String, _ mode: Mode) throws(SystemCallError) {
        self.path = path
        switch mode {
        case .read:
            fd = try syscallChecked("open", path) { Glibc.open(path, O_RDONLY | O_CLOEXEC) }
        case .createNew(let permissions):
            fd = try syscallChecked("open", path) { Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(permissions)) }
        case .writeNonBlocking:
            fd = try syscallChecked("open", path) { Glibc.open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC) }
        }
    }

    deinit { close(fd) }

    /// Writes all of `bytes`, resuming after short writes.
    public func write(_ bytes: [UInt8]) throws(SystemCallError) {
        try writeAll(fd, bytes, path: path)
    }

    public func sync() throws(SystemCallError) {
        let fd = self.fd
        _ = try syscallChecked("fsync", path) { fsync(fd) }
    }

    /// The file system's magic number (statfs f_type).
    public func fileSystemType() -> Int {
        Int(crisp_fstatfs_type(fd))
    }
}
