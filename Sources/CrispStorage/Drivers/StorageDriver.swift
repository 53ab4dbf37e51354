import CrispCore
import CrispOS
import Glibc

/// One way of laying out layers on disk (overlay, vfs, btrfs). Chosen once at start-up by
/// `makeStorageDriver`; the stores never branch on the driver's name.
///
/// Implementations are value types holding paths only, safe to use from any thread; the
/// `Storage` actor serializes calls for one layer.
protocol StorageDriver: Sendable {
    var name: String { get }
    /// The directory holding this driver's data (`<root>/<name>`).
    var home: String { get }
    /// Whether a layer's directory is a full copy of its parent (its disk use includes the
    /// parent's).
    var copiesParent: Bool { get }

    /// Verifies the driver works on the backing filesystem (a throwaway mount or subvolume).
    func check() throws
    /// Creates the on-disk state of a new layer on `parent` (chain nearest first) and says where
    /// and how to apply its content.
    func createLayer(_ id: LayerID, parentChain: [LayerID]) throws -> ApplyTarget
    /// Removes everything of a layer; a layer that does not exist is not an error.
    func removeLayer(_ id: LayerID) throws
    /// Makes the layer's root filesystem available (overlay mounts; copy drivers return the
    /// directory) and returns its path.
    func mount(_ id: LayerID, parentChain: [LayerID]) throws -> String
    func unmount(_ id: LayerID) throws
    /// Where `mount` puts a real mount for this layer, or nil when the driver mounts nothing
    /// (copy drivers hand out the directory itself).
    func mountPoint(_ id: LayerID) -> String?
    /// The directory holding only what the layer changed (for usage of container layers).
    func changesDirectory(_ id: LayerID) -> String
    /// Where the changes of layer `id` over `parent` can be read from (for exporting a diff).
    func changes(_ id: LayerID, parent: LayerID?) -> ChangesSource
    /// Ids of layers present on disk (to find orphans after a crash).
    func layerIDsOnDisk() throws -> [String]
}

/// Creates the driver named in the configuration.
func makeStorageDriver(name: String, root: String, options: [String], durable: Bool = true) throws -> any StorageDriver {
    // Options are "<driver>.<key>=<value>" as in containers/storage; the only one understood is
    // overlay.mountopt (extra comma-separated mount options, e.g. "nodev"). Anything else is an
    // error rather than silently ignored.
    var mountOptions: [String] = []
    for option in options {
        if option.hasPrefix("overlay.mountopt="), name.hasPrefix("overlay") || name.isEmpty {
            mountOptions += option.dropFirst("overlay.mountopt=".count).split(separator: ",").map(String.init)
        } else {
            throw CrispError.invalidArgument("unsupported storage driver option \"\(option)\" for driver \"\(name)\": only overlay.mountopt=... is supported")
        }
    }
    for o in mountOptions where o.contains("lowerdir") || o.contains("upperdir") || o.contains("workdir") {
        throw CrispError.invalidArgument("overlay.mountopt may not set \"\(o)\": crisp sets the layer directories itself")
    }
    switch name {
    case "overlay", "overlay2", "": return OverlayDriver(home: root + "/overlay", mountOptions: mountOptions, durable: durable)
    case "vfs": return VFSDriver(home: root + "/vfs")
    case "btrfs": return BtrfsDriver(home: root + "/btrfs")
    case "devicemapper", "aufs", "zfs":
        throw CrispError.failedPrecondition("storage driver \"\(name)\" is not supported on this host (this kernel has no \(name == "aufs" ? "AUFS" : name == "zfs" ? "ZFS" : "device-mapper") support); use overlay, vfs or btrfs")
    default:
        throw CrispError.invalidArgument("unknown storage driver \"\(name)\": want overlay, vfs or btrfs")
    }
}

func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
    if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemCallError("mkdir", path, errno: errno) }
}

/// `mkdir -p` for the driver's own (trusted) directories.
func makeDirectories(_ path: String, mode: mode_t = 0o700) throws {
    var current = ""
    for c in path.split(separator: "/") {
        current += "/" + c
        try makeDirectory(current, mode: mode)
    }
}

/// Layer ids on disk are 64 hex digits; anything else in a driver directory is not a layer.
func isLayerDirectoryName(_ s: String) -> Bool {
    s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
}

func listDirectory(_ path: String) throws -> [String] {
    let fd = try syscallChecked("open", path) { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
    defer { close(fd) }
    return try DirectoryWalk.entries(of: fd, subject: path).map(\.name.description)
}

/// An overlay mount's directories: lower layers (top first, as `lowerdir=` lists them), the
/// container's upper and work directories.
public struct OverlayLayout: Sendable, Equatable {
    public var lowers: [String]
    public var upper: String
    public var work: String
}
