import CrispCore
import Foundation
import Glibc

/// The CRI socket's life outside of gRPC: parent directory, stale files, permissions.
enum SocketPreparation {
    /// Creates the parent directory (0755) and removes a socket left by a crashed run. A socket
    /// that still accepts connections belongs to a live daemon and is an error, because binding
    /// would silently unlink it and steal its clients.
    static func prepare(path: String) throws(CrispError) {
        let parent = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
        } catch {
            throw CrispError(.internal, "cannot create socket directory \(parent): \(error.localizedDescription)")
        }
        guard let type = fileType(path) else { return }
        guard type == .typeSocket else {
            throw CrispError(.failedPrecondition, "\(path) exists and is not a socket; refusing to replace it")
        }
        if isLive(path) {
            throw CrispError(.failedPrecondition, "socket \(path) is held by a live process (another crispd?); stop it or choose another --listen")
        }
        if unlink(path) != 0 && errno != ENOENT {
            throw CrispError(.internal, "cannot remove stale socket", cause: SystemCallError("unlink", path, errno: errno))
        }
    }

    /// The type of `path` itself (symlinks not followed), nil when it does not exist.
    static func fileType(_ path: String) -> FileAttributeType? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
    }

    static func isLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return rc == 0
    }

    static func restrict(path: String) throws(CrispError) {
        if chmod(path, 0o660) != 0 {
            throw CrispError(.internal, "cannot set socket mode", cause: SystemCallError("chmod", path, errno: errno))
        }
    }

    static func remove(path: String) {
        if fileType(path) == .typeSocket { unlink(path) }
    }
}
