public import CrispCore
public import CrispRuntime
import CrispOS
import Foundation
import Logging

/// The parts of CreateContainer that look at the host or the image before the spec is built.
extension ContainerService {
    /// Host device nodes (a directory gives every device node below it) with their numbers, as
    /// the runtime needs them. A missing path or a file that is not a device is the caller's error.
    static func resolveDevices(_ requests: [(containerPath: String, hostPath: String, permissions: String)]) throws(CrispError) -> [ContainerDeviceRequest] {
        var out: [ContainerDeviceRequest] = []
        for r in requests {
            let st: FileStatus
            do { st = try FileStatus(of: r.hostPath) } catch {
                throw .invalidArgument("device \(r.hostPath) cannot be given to the container: \(error)")
            }
            let permissions = r.permissions.isEmpty ? "rwm" : r.permissions
            let target = r.containerPath.isEmpty ? r.hostPath : r.containerPath
            if st.kind == .directory {
                let base = URL(fileURLWithPath: r.hostPath)
                let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil)
                while let url = walker?.nextObject() as? URL {
                    guard let child = try? FileStatus(of: url.path, followLinks: false), let d = device(child, path: target + "/" + String(url.path.dropFirst(base.path.count + 1)), permissions: permissions) else { continue }
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
    static func checkPropagation(_ mounts: [ContainerMountRequest], mountinfo: () -> String?) throws(CrispError) {
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

    static func device(_ st: FileStatus, path: String, permissions: String) -> ContainerDeviceRequest? {
        guard st.isDevice else { return nil }
        return ContainerDeviceRequest(containerPath: path, type: st.kind == .characterDevice ? "c" : "b",
                                                major: st.deviceMajor, minor: st.deviceMinor,
                                                fileMode: st.permissions, permissions: permissions)
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
            do { try root.makeDirectories(volume) } catch {
                throw .internal("cannot create the image volume \(volume) in \(rootfs): \(error)")
            }
        }
    }

    /// Every device node under /dev, for privileged containers. Skipped as runc's own host
    /// device list skips them: the pseudo-terminal, shared-memory, mqueue and fd trees (the
    /// container gets its own), container-manager bookkeeping, and /dev/console (the runtime
    /// sets it up for a terminal).
    static func hostDevices(root: String = "/dev") -> [ContainerDeviceRequest] {
        let skipped: Set<String> = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"]
        var out: [ContainerDeviceRequest] = []
        func walk(_ dir: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            for name in names.sorted() {
                let path = dir + "/" + name
                guard let st = try? FileStatus(of: path, followLinks: false) else { continue }
                if st.kind == .directory {
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
    static func relabel(_ m: ContainerMountRequest, label: String) throws(CrispError) {
        let path = (m.hostPath as NSString).standardizingPath
        guard !unrelabelable.contains(path) else {
            throw .invalidArgument("mount \(m.containerPath): relabelling \(path) would relabel a system directory of the host")
        }
        try Relabel.tree(path, attribute: "security.selinux", value: label)
    }
}
