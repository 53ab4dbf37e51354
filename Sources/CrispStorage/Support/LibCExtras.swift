import CrispCore
import CrispOS
import Glibc

// glibc functions that Swift's Glibc module does not export (they sit behind _GNU_SOURCE) and
// CCrispShim does not wrap yet. Looked up once by name in the already-loaded libc; a
// `crisp_syncfs`/`crisp_llistxattr` in CCrispShim would make this file unnecessary.

private typealias SyncfsFunction = @convention(c) (Int32) -> Int32
private typealias SyncFileRangeFunction = @convention(c) (Int32, Int64, Int64, UInt32) -> Int32
private typealias LlistxattrFunction = @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, Int) -> Int

private let syncfsFunction: SyncfsFunction? = dlsym(nil, "syncfs").map { unsafeBitCast($0, to: SyncfsFunction.self) }
private let syncFileRangeFunction: SyncFileRangeFunction? = dlsym(nil, "sync_file_range").map { unsafeBitCast($0, to: SyncFileRangeFunction.self) }
private let llistxattrFunction: LlistxattrFunction? = dlsym(nil, "llistxattr").map { unsafeBitCast($0, to: LlistxattrFunction.self) }

/// Flushes the whole filesystem holding `path` to disk: one call for a freshly written layer
/// instead of an fsync per file.
func syncFilesystem(of path: String) throws {
    guard let syncfs = syncfsFunction else { throw CrispError.internal("syncfs(2) is not available in this libc") }
    let fd = try syscallChecked("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    defer { close(fd) }
    _ = try syscallChecked("syncfs", path) { syncfs(fd) }
}

/// Starts writing `fd`'s dirty pages to disk without waiting (sync_file_range with
/// SYNC_FILE_RANGE_WRITE), so that the `syncFilesystem` at the end of a layer finds most of a
/// large file already written instead of flushing everything at once. Best effort.
func startWriteback(_ fd: Int32) {
    _ = syncFileRangeFunction?(fd, 0, 0, 2 /* SYNC_FILE_RANGE_WRITE */)
}

/// llistxattr(2) on a NUL-terminated byte path: the xattr names of the node itself, never of a
/// symlink's target. Returns the raw NUL-separated list, or nil (errno set) when unreadable.
func listXattrs(_ path: [CChar]) -> [UInt8]? {
    guard let llistxattr = llistxattrFunction else { errno = ENOSYS; return nil }
    var size = 4096
    while true {
        var buf = [CChar](repeating: 0, count: size)
        let n = path.withUnsafeBufferPointer { p in buf.withUnsafeMutableBufferPointer { llistxattr(p.baseAddress, $0.baseAddress, size) } }
        if n >= 0 { return buf[0..<n].map { UInt8(bitPattern: $0) } }
        guard errno == ERANGE, size < 1 << 20 else { return nil }
        size *= 4
    }
}
