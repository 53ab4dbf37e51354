public import CrispCore
public import CrispRuntime
import CrispOS
import Foundation
import Glibc
import Logging

/// The parts of CreateContainer that look at the host or the image before the spec is built.
extension ContainerService {
    /// Host device nodes (a directory gives every device node below it) with their numbers, as
    /// the runtime needs them. A missing path or a file that is not a device is the caller's error.
    static func resolveDevices(_ requests: [(containerPath: String, hostPath: String, permissions: String)]) throws(CrispError) -> [ContainerSpecInput.DeviceRequest] {
        var out: [ContainerSpecInput.DeviceRequest] = []
        for r in requests {
            var st = stat()
            guard stat(r.hostPath, &st) == 0 else {
                throw .invalidArgument("device \(r.hostPath) cannot be given to the container: \(String(cString: strerror(errno)))")
            }
            let permissions = r.permissions.isEmpty ? "rwm" : r.permissions
            let target = r.containerPath.isEmpty ? r.hostPath : r.containerPath
            if st.st_mode & S_IFMT == S_IFDIR {
                let base = URL(fileURLWithPath: r.hostPath)
                let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil)
                while let url = walker?.nextObject() as? URL {
                    var child = stat()
                    guard lstat(url.path, &child) == 0, let d = device(child, path: target + "/" + String(url.path.dropFirst(base.path.count + 1)), permissions: permissions) else { continue }
                    out.append(d)
                }
            } else if let d = device(st, path: target, permissions: permissions) {
                out.append(d)
            } else {
                throw .invalidArgument("\(r.hostPath) is not a character or block device")
            }
        }
        return out
    }

    /// A propagating bind mount needs a host mount that propagates: bidirectional needs a shared
    /// one, host-to-container a shared or slave one. CRI-O refuses the container otherwise, rather
    /// than start it with a mount that silently does not propagate.
    /// The mount table is read only when a mount asks for propagation.
    static func checkPropagation(_ mounts: [ContainerSpecInput.MountRequest], mountinfo: () -> String?) throws(CrispError) {
        let wanted = mounts.filter { $0.propagation != .private }
        guard !wanted.isEmpty, let mountinfo = mountinfo() else { return }
        for m in wanted {
            let path = (m.hostPath as NSString).resolvingSymlinksInPath
            guard let (point, p) = Mounts.propagation(of: path, mountinfo: mountinfo) else { continue }
            switch (m.propagation, p) {
            case (.bidirectional, .shared), (.hostToContainer, .shared), (.hostToContainer, .slave), (.private, _): continue
            case (.bidirectional, _):
                throw .failedPrecondition("mount \(m.hostPath) asks for bidirectional propagation, but it lies on \(point), which is not a shared mount")
            case (.hostToContainer, _):
                throw .failedPrecondition("mount \(m.hostPath) asks for host-to-container propagation, but it lies on \(point), which is neither a shared nor a slave mount")
            }
        }
    }

    static func device(_ st: stat, path: String, permissions: String) -> ContainerSpecInput.DeviceRequest? {
        let kind = st.st_mode & S_IFMT
        guard kind == S_IFCHR || kind == S_IFBLK else { return nil }
        // glibc's major()/minor() are macros Swift cannot import; this is their definition.
        let dev = UInt64(st.st_rdev)
        let major = Int64(((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
        let minor = Int64((dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
        return ContainerSpecInput.DeviceRequest(containerPath: path, type: kind == S_IFCHR ? "c" : "b", major: major, minor: minor,
                                                fileMode: UInt32(st.st_mode & 0o7777), permissions: permissions)
    }

    /// The image's declared volumes become directories in the container's own layer (CRI-O's
    /// default `image_volumes = "mkdir"`), unless the request mounts something there. Created
    /// through RESOLVE_IN_ROOT so a symlink in the image cannot send the mkdir to the host.
    static func makeVolumeDirectories(_ volumes: [String], rootfs: String, except mounted: Set<String>) throws(CrispError) {
        guard !volumes.isEmpty else { return }
        let root: SafeRoot
        do { root = try SafeRoot(path: rootfs) } catch {
            throw .internal("cannot open the root filesystem \(rootfs) to create image volumes: \(error)")
        }
        for volume in volumes.sorted() where !mounted.contains(volume) {
            do { try makeDirectories(volume, in: root) } catch {
                throw .internal("cannot create the image volume \(volume) in \(rootfs): \(error)")
            }
        }
    }

    /// Creates `path` as directories inside `root`, resolving symlinks as the kernel would if
    /// `root` were `/` (what CRI-O gets from securejoin and MkdirAll): a link whose target does
    /// not exist yet gets that target created, inside the root.
    static func makeDirectories(_ path: String, in root: borrowing SafeRoot) throws {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var links = 0
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component == "." { continue }
            if component == ".." {
                if !resolved.isEmpty { resolved.removeLast() }
                continue
            }
            let (dirfd, name) = try root.openParent(of: "/" + (resolved + [component]).joined(separator: "/"))
            defer { close(dirfd) }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlinkat(dirfd, name, &buffer, buffer.count - 1)
            if n >= 0 {
                links += 1
                guard links <= 40 else { throw SystemCallError("readlinkat", path, errno: ELOOP) }
                buffer[n] = 0
                let target = String(cString: buffer)
                if target.hasPrefix("/") { resolved = [] }
                pending = target.split(separator: "/").map(String.init) + pending
                continue
            }
            if mkdirat(dirfd, name, 0o755) != 0 && errno != EEXIST {
                throw SystemCallError("mkdirat", "/" + (resolved + [component]).joined(separator: "/"), errno: errno)
            }
            resolved.append(component)
        }
    }

    /// Every device node under /dev, for privileged containers. Skipped as runc's own host
    /// device list skips them: the pseudo-terminal, shared-memory, mqueue and fd trees (the
    /// container gets its own), container-manager bookkeeping, and /dev/console (the runtime
    /// sets it up for a terminal).
    static func hostDevices(root: String = "/dev") -> [ContainerSpecInput.DeviceRequest] {
        let skipped: Set<String> = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]
        var out: [ContainerSpecInput.DeviceRequest] = []
        func walk(_ dir: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for name in names.sorted() {
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    if !skipped.contains(name) { walk(path) }
                } else if path != root + "/console",
                          let d = device(st, path: "/dev" + path.dropFirst(root.count), permissions: "rwm") {
                    out.append(d)
                }
            }
        }
        walk(root)
        return out
    }

    /// Directories whose relabelling would break the host (CRI-O refuses the same kind).
    static let unrelabelable: Set<String> = ["/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/proc",
                                             "/root", "/run", "/sbin", "/sys", "/usr", "/var", "/var/lib", "/tmp"]

    /// A volume asked to be relabelled gets the container's mount label on every file, so the
    /// container's SELinux type may use it. Only called where SELinux is on.
    static func relabel(_ m: ContainerSpecInput.MountRequest, label: String) throws(CrispError) {
        let path = (m.hostPath as NSString).standardizingPath
        guard !unrelabelable.contains(path) else {
            throw .invalidArgument("mount \(m.containerPath): relabelling \(path) would relabel a system directory of the host")
        }
        try Relabel.tree(path, attribute: "security.selinux", value: label)
    }
}
