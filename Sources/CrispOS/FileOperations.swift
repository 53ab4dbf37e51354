public import CrispCore
import Glibc

/// Path operations the services need, with errors that name the call and the path.
public enum FileOperations {
    public static func rename(_ from: String, to: String) throws(SystemCallError) {
        _ = try syscallChecked("rename", "\(from) → \(to)") { Glibc.rename(from, to) }
    }

    /// Removes a file; a file already gone is not an error.
    public static func removeFile(_ path: String) throws(SystemCallError) {
        if Glibc.unlink(path) != 0, errno != ENOENT { throw SystemCallError("unlink", path, errno: errno) }
    }

    public static func changeOwner(_ path: String, uid: UInt32, gid: UInt32) throws(SystemCallError) {
        _ = try syscallChecked("chown", path) { Glibc.chown(path, uid, gid) }
    }

    public static func changeMode(_ path: String, to mode: UInt32) throws(SystemCallError) {
        _ = try syscallChecked("chmod", path) { Glibc.chmod(path, mode_t(mode)) }
    }

    /// Whether `path` is a namespace pin: a bind mount of an nsfs inode. After a reboot the pin
    /// is a plain file on tmpfs, or gone.
    public static func isNamespacePin(_ path: String) -> Bool {
        guard let file = try? OpenFile(path, .read) else { return false }
        return file.fileSystemType() == 0x6e73_6673  // NSFS_MAGIC
    }
}
