public import CrispCore
import Glibc

/// What stat(2) says of a path, as far as crisp asks: its kind, permission bits and, for a
/// device node, its numbers.
public struct FileStatus: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case regular, directory, symlink, characterDevice, blockDevice, other }

    public var kind: Kind
    /// The permission bits (mode & 07777).
    public var permissions: UInt32
    public var deviceMajor: Int64
    public var deviceMinor: Int64

    public init(kind: Kind, permissions: UInt32, deviceMajor: Int64 = 0, deviceMinor: Int64 = 0) {
        self.kind = kind
        self.permissions = permissions
        self.deviceMajor = deviceMajor
        self.deviceMinor = deviceMinor
    }

    /// `followLinks: false` describes a symlink itself (lstat).
    public init(of path: String, followLinks: Bool = true) throws(SystemCallError) {
        var st = stat()
        let call = followLinks ? "stat" : "lstat"
        _ = try syscallChecked(call, path) { statPath(path, &st, followLinks: followLinks) }
        self.init(st)
    }

    init(_ st: stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        default: kind = .other
        }
        permissions = UInt32(st.st_mode & 0o7777)
        // glibc's major()/minor() are macros Swift cannot import; this is their definition.
        let dev = UInt64(st.st_rdev)
        deviceMajor = Int64(((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
        deviceMinor = Int64((dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
    }

    public var isDevice: Bool { kind == .characterDevice || kind == .blockDevice }
}

/// Outside the type, where `stat` names the function as well as the struct.
private func statPath(_ path: String, _ st: inout stat, followLinks: Bool) -> Int32 {
    followLinks ? stat(path, &st) : lstat(path, &st)
}
