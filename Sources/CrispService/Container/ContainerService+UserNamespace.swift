public import CrispCore
import CrispOS
import CrispStorage
import CrispRuntime
import CrispNetwork
import CrispSecurity
import Foundation

/// The root filesystem of a container in a pod with its own user namespace. The image's layers
/// belong to host root; chowning them per pod would copy or rewrite every file. Instead each
/// lower layer is mounted again with its ids mapped through the pod's user namespace (an
/// idmapped mount, made by crisp-pinns), and overlay stacks those with the container's own
/// upper directory. Overlay itself cannot be idmapped (EINVAL on this kernel), but it takes
/// idmapped layers: image files appear owned by the container's root, and what the container
/// writes lands in the upper directory under the mapped host ids.
extension ContainerService {
    func idmappedRootfsPath(_ id: String) -> String { "\(recordsDirectory)/\(id)/rootfs" }

    func mountIdmappedRootfs(_ id: ContainerID, pod: Sandbox) async throws(CrispError) -> String {
        guard let userns = pod.usernsPath, let uid = pod.uidMap, let gid = pod.gidMap else {
            throw .internal("pod \(pod.id) has no user namespace on record")
        }
        guard let pinns = sandboxes.namespaces else {
            throw .failedPrecondition("user namespaces need the crisp-pinns helper, which this daemon has not configured")
        }
        let layout: OverlayLayout?
        do { layout = try await storage.overlayLayout(id) } catch {
            throw error as? CrispError ?? CrispError(.internal, "reading the layers of container \(id): \(error)")
        }
        guard let layout else {
            throw .failedPrecondition("pods with their own user namespace need the overlay storage driver (idmapped lower layers); this node uses \(await storage.driverName)")
        }
        let base = "\(recordsDirectory)/\(id.rawValue)"
        let target = idmappedRootfsPath(id.rawValue)
        var pairs: [(source: String, target: String)] = []
        for (i, lower) in layout.lowers.enumerated() { pairs.append((lower, "\(base)/idmap/\(i)")) }
        for dir in pairs.map(\.target) + [target] { try make(directory: dir) }
        // runc's init binds the root filesystem onto itself from inside the user namespace, as
        // the mapped root (an unprivileged host uid), so it must be able to walk the path:
        // crisp's own directories on the way get search (not read) permission for others.
        for dir in [settings.root, recordsDirectory, base] { try allowTraversal(dir) }
        try await pinns.idmap(userNamespace: userns, pairs)
        // Overlay keeps its own references to its layers; the idmapped mounts need no name once
        // it is mounted, and none is left behind whatever happens next.
        defer { for p in pairs { try? Mounts.unmount(p.target, detach: true) } }
        // "/" of the container is the upper directory's root: the container's root owns it.
        do { try FileOperations.changeOwner(layout.upper, uid: uid.hostID, gid: gid.hostID) } catch {
            throw CrispError(.internal, "cannot give the container's upper layer to the pod's root (\(uid.hostID):\(gid.hostID))", cause: error)
        }
        let data = "lowerdir=\(pairs.map(\.target).joined(separator: ":")),upperdir=\(layout.upper),workdir=\(layout.work)"
        guard data.utf8.count < 4096 else {
            throw CrispError(.resourceExhausted, "overlay: \(pairs.count) idmapped lower layers make \(data.utf8.count) bytes of mount options, over the kernel's one-page limit")
        }
        do { try Mounts.mount(source: "overlay", target: target, type: "overlay", data: data) } catch {
            throw .internal("mounting the idmapped root filesystem of container \(id) at \(target): \(error)")
        }
        return target
    }

    /// Volumes that ask for an idmapped mount get one: the host path is mounted again, mapped
    /// through the pod's user namespace, at a staging path under the container's record, and the
    /// runtime binds that. Debian's runc 1.1 cannot make idmapped mounts itself. The staging
    /// mounts are only needed until the runtime has made its own copies at create.
    /// - Returns: the staging paths, to detach after create.
    func stageIdmappedVolumes(_ mounts: inout [ContainerMountRequest], id: ContainerID,
                              pod: Sandbox) async throws(CrispError) -> [String] {
        let wanted = mounts.indices.filter { !mounts[$0].uidMappings.isEmpty || !mounts[$0].gidMappings.isEmpty }
        guard !wanted.isEmpty else { return [] }
        guard let userns = pod.usernsPath, let uid = pod.uidMap, let gid = pod.gidMap else {
            throw .invalidArgument("mount \(mounts[wanted[0]].containerPath) asks for an idmapped mount, but pod \(pod.id) has no user namespace of its own")
        }
        guard let pinns = sandboxes.namespaces else {
            throw .failedPrecondition("idmapped mounts need the crisp-pinns helper, which this daemon has not configured")
        }
        var pairs: [(source: String, target: String)] = []
        for i in wanted {
            let m = mounts[i]
            guard m.uidMappings == [uid], m.gidMappings == [gid] else {
                throw .invalidArgument("mount \(m.containerPath) asks for mappings other than its pod's user namespace (\(uid.containerID) \(uid.hostID) \(uid.length)); crisp maps volumes only through the pod's own")
            }
            let st: FileStatus
            do { st = try FileStatus(of: m.hostPath) } catch {
                throw .invalidArgument("mount \(m.containerPath): \(error)")
            }
            let staging = "\(recordsDirectory)/\(id.rawValue)/idmapped-volumes/\(i)"
            if st.kind == .directory {
                try make(directory: staging)
            } else {
                try make(directory: (staging as NSString).deletingLastPathComponent)
                // An empty file for the idmapped bind of a file to land on.
                guard FileManager.default.createFile(atPath: staging, contents: nil, attributes: [.posixPermissions: 0o644]) else {
                    throw .internal("cannot create the staging file \(staging) for mount \(m.containerPath)")
                }
            }
            pairs.append((m.hostPath, staging))
            mounts[i].hostPath = staging
        }
        try await pinns.idmap(userNamespace: userns, pairs)
        return pairs.map(\.target)
    }

    func unmountIdmappedRootfs(_ id: String) {
        try? Mounts.unmount(idmappedRootfsPath(id), detach: true)
    }
}
