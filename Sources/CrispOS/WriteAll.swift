public import CrispCore
import Glibc

/// Writes all of `bytes` to `fd`, resuming after short writes and EINTR; `path` names the file in
/// the error.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SystemCallError) {
    var offset = 0
    while offset < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            throw SystemCallError("write", path, errno: errno)
        }
        if n == 0 { throw SystemCallError("write", path, errno: EIO) }
        offset += n
    }
}

/// `writeAll` of an array.
public func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SystemCallError) {
    // withUnsafeBytes rethrows untyped errors; the typed one goes through a Result.
    try bytes.withUnsafeBytes { p in Result { () throws(SystemCallError) in try writeAll(fd, p, path: path) } }.get()
}
