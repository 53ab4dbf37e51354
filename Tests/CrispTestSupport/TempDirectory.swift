import CrispOS
import CrispCore
import Glibc

/// A directory under /var/tmp removed (with everything below it, after unmounting anything
/// mounted there) when `remove()` runs; tests call it from `defer`.
public struct TempDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "crisp-test") throws {
        var template = Array("/var/tmp/\(prefix)-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemCallError("mkdtemp", prefix, errno: errno)
        }
        path = String(cString: p)
    }

    public func remove() {
        if let mounts = try? Mounts.mountPoints(under: path) {
            for m in mounts { try? Mounts.unmount(m, detach: true) }
        }
        try? DirectoryWalk.removeTree(path)
    }

    public func sub(_ name: String) -> String { path + "/" + name }
}
