import CrispCore
import Glibc

/// Reads a small text file (proc files, link files) whole; nil when it cannot be opened.
public func readSmallFile(_ path: String) -> String? {
    let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { return nil }
    defer { close(fd) }
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; return nil }
        if n == 0 { break }
        data.append(contentsOf: buf[0..<n])
    }
    return String(decoding: data, as: UTF8.self)
}

/// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, rename.
public func writeFileAtomically(_ path: String, _ contents: String, mode: UInt32 = 0o644, durable: Bool = true) throws {
    try writeFileAtomically(path, bytes: Array(contents.utf8), mode: mode, durable: durable)
}

/// write-temp-(fsync)-rename: a crash leaves the old file or the new one, never half of one.
/// `durable: false` skips the fsync, which only a power loss needs.
public func writeFileAtomically(_ path: String, bytes: [UInt8], mode: UInt32 = 0o644, durable: Bool = true) throws {
    let tmp = path + ".tmp-\(getpid())"
    let fd = try syscallChecked("open", tmp) { Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode)) }
    var ok = false
    defer {
        close(fd)
        if !ok { unlink(tmp) }
    }
    try writeAll(fd, bytes, path: tmp)
    if durable { _ = try syscallChecked("fsync", tmp) { fsync(fd) } }
    _ = try syscallChecked("rename", path) { rename(tmp, path) }
    ok = true
}
