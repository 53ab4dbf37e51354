import CCrispShim

/// Reads an extended attribute of `path` without following a final symlink; returns the value's
/// length, or -1 (errno set) when it is missing or unreadable.
public func crispLGetXattr(_ path: String, _ name: String, _ buffer: inout [UInt8]) -> Int {
    buffer.withUnsafeMutableBytes { crisp_lgetxattr(path, name, $0.baseAddress, $0.count) }
}
