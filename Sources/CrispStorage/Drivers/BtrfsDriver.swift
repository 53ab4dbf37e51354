import CrispCore
import CrispOS
import CCrispShim
import Glibc

/// btrfs: a subvolume per layer in `<home>/subvolumes/<id>`; a child layer starts as a
/// snapshot of its parent (copy-on-write, instant). "Mounting" hands out the subvolume.
struct BtrfsDriver: StorageDriver {
    let home: String
    var name: String { "btrfs" }
    var copiesParent: Bool { false }
    static let superMagic: Int = 0x9123_683E

    var subvolumes: String { home + "/subvolumes" }
    func layerDir(_ id: LayerID) -> String { "\(subvolumes)/\(id.rawValue)" }
    func changesDirectory(_ id: LayerID) -> String { layerDir(id) }

    func check() throws {
        try makeDirectories(subvolumes)
        let fd = try syscallChecked("open", subvolumes) { open(subvolumes, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        let type = crisp_fstatfs_type(fd)
        guard type == Self.superMagic else {
            throw CrispError.failedPrecondition("btrfs driver: \(home) is not on a btrfs filesystem (statfs type 0x\(String(type, radix: 16)))")
        }
    }

    func createLayer(_ id: LayerID, parentChain: [LayerID]) throws -> ApplyTarget {
        let dirfd = try syscallChecked("open", subvolumes) { open(subvolumes, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dirfd) }
        if let parent = parentChain.first {
            let src = try syscallChecked("open", layerDir(parent)) { open(layerDir(parent), O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
            defer { close(src) }
            _ = try syscallChecked("BTRFS_IOC_SNAP_CREATE_V2", layerDir(id)) { crisp_btrfs_snapshot(src, dirfd, id.rawValue) }
        } else {
            _ = try syscallChecked("BTRFS_IOC_SUBVOL_CREATE", layerDir(id)) { crisp_btrfs_subvol_create(dirfd, id.rawValue) }
        }
        return ApplyTarget(root: layerDir(id), whiteouts: .remove)
    }

    func removeLayer(_ id: LayerID) throws {
        let dirfd = try syscallChecked("open", subvolumes) { open(subvolumes, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dirfd) }
        if crisp_btrfs_subvol_delete(dirfd, id.rawValue) != 0 {
            let e = errno
            if e == ENOENT { return }
            // Not a subvolume (a crash between mkdir-like steps): plain removal.
            if e == EINVAL || e == ENOTDIR { try DirectoryWalk.removeTree(layerDir(id)); return }
            throw SystemCallError("BTRFS_IOC_SNAP_DESTROY", layerDir(id), errno: e)
        }
    }

    func mount(_ id: LayerID, parentChain: [LayerID]) throws -> String { layerDir(id) }
    func unmount(_ id: LayerID) throws {}
    func mountPoint(_ id: LayerID) -> String? { nil }
    func changes(_ id: LayerID, parent: LayerID?) -> ChangesSource { .compare(layer: layerDir(id), parent: parent.map(layerDir)) }
    func layerIDsOnDisk() throws -> [String] { try listDirectory(subvolumes).filter(isLayerDirectoryName) }
}
