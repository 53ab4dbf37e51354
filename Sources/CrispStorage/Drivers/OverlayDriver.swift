import CrispCore
import CrispOS
import CCrispShim
import Glibc

/// overlayfs: per layer `<home>/<id>/diff` (its changes), `work` (overlay's scratch), `merged`
/// (mount point), `link` (its short name) and `lower` (the parent chain as `l/NAME:l/NAME…`).
/// `<home>/l/NAME` are symlinks to `../<id>/diff`: the mount options name lower layers through
/// them relative to an fd of `<home>` (/proc/self/fd/N/l/NAME), ~28 bytes each, so 128 lower
/// layers fit the kernel's one-page limit for mount options, and no process-wide chdir is
/// needed in a multithreaded daemon.
struct OverlayDriver: StorageDriver {
    let home: String
    /// Extra mount options from `overlay.mountopt` (e.g. nodev).
    var mountOptions: [String] = []
    /// Whether the link and lower files are fsynced (`storage_sync = filesystem`); with `none`
    /// the rename alone keeps them whole across a crashed process.
    var durable = true
    var name: String { "overlay" }
    var copiesParent: Bool { false }
    static let linkLength = 8

    func layerDir(_ id: LayerID) -> String { "\(home)/\(id.rawValue)" }
    func changesDirectory(_ id: LayerID) -> String { layerDir(id) + "/diff" }

    func check() throws {
        try makeDirectories(home + "/l")
        try makeDirectory(home + "/empty", mode: 0o755)
        // A real mount with two lower layers and an upper: proves overlay (and its whiteout
        // devices) work on this backing filesystem, e.g. fails on overlay-on-overlay.
        for stale in (try? listDirectory(home)) ?? [] where stale.hasPrefix("probe-") {  // a crash during an earlier check
            try? Mounts.unmount("\(home)/\(stale)/merged", detach: true)
            try? DirectoryWalk.removeTree("\(home)/\(stale)")
        }
        let probe = home + "/probe-\(getpid())"
        try makeDirectory(probe)
        defer {
            try? Mounts.unmount(probe + "/merged", detach: true)
            try? DirectoryWalk.removeTree(probe)
        }
        for d in ["l1", "l2", "upper", "work", "merged"] { try makeDirectory(probe + "/" + d) }
        guard mknod(probe + "/upper/wh", S_IFCHR, 0) == 0 else {
            throw CrispError(.failedPrecondition, "overlay driver: cannot create whiteout devices in \(home)",
                             cause: SystemCallError("mknod", probe + "/upper/wh", errno: errno))
        }
        do {
            try Mounts.mount(source: "overlay", target: probe + "/merged", type: "overlay",
                             data: "lowerdir=\(probe)/l1:\(probe)/l2,upperdir=\(probe)/upper,workdir=\(probe)/work")
        } catch {
            throw CrispError(.failedPrecondition, "overlay driver does not work on the filesystem of \(home) (overlay on overlay or tmpfs without xattrs?); use vfs", cause: error)
        }
        try Mounts.unmount(probe + "/merged")
    }

    func createLayer(_ id: LayerID, parentChain: [LayerID]) throws -> ApplyTarget {
        let dir = layerDir(id)
        try makeDirectory(dir)
        for d in ["diff", "work", "merged"] { try makeDirectory(dir + "/" + d, mode: d == "diff" ? 0o755 : 0o700) }
        var link = ""
        while true {
            link = Self.randomLinkName()
            if symlink("../\(id.rawValue)/diff", "\(home)/l/\(link)") == 0 { break }
            if errno != EEXIST { throw SystemCallError("symlink", "\(home)/l/\(link)", errno: errno) }
        }
        try writeFileAtomically(dir + "/link", link, durable: durable)
        var lower: [String] = []
        if let parent = parentChain.first {
            guard let parentLink = readSmallFile(layerDir(parent) + "/link") else {
                throw CrispError.notFound("overlay: link of parent layer \(parent) missing")
            }
            lower.append("l/" + parentLink)
            if let parentLower = readSmallFile(layerDir(parent) + "/lower"), !parentLower.isEmpty {
                lower.append(parentLower)
            }
        }
        try writeFileAtomically(dir + "/lower", lower.joined(separator: ":"), durable: durable)
        return ApplyTarget(root: dir + "/diff", whiteouts: .overlay,
                           lowerRoots: parentChain.map { changesDirectory($0) })
    }

    func removeLayer(_ id: LayerID) throws {
        let dir = layerDir(id)
        try Mounts.unmount(dir + "/merged", detach: true)
        if let link = readSmallFile(dir + "/link"), !link.isEmpty, !link.contains("/") {
            unlink("\(home)/l/\(link)")
        }
        try DirectoryWalk.removeTree(dir)
    }

    func mount(_ id: LayerID, parentChain: [LayerID]) throws -> String {
        let dir = layerDir(id)
        let home = try SafeRoot(path: self.home)
        let prefix = procFDPath(home.fd)
        var lowers = (readSmallFile(dir + "/lower") ?? "").split(separator: ":").map { "\(prefix)/\($0)" }
        if lowers.isEmpty { lowers = ["\(prefix)/empty"] }  // overlay needs a lower layer; a scratch image has none
        var data = "lowerdir=\(lowers.joined(separator: ":")),upperdir=\(prefix)/\(id.rawValue)/diff,workdir=\(prefix)/\(id.rawValue)/work"
        if !mountOptions.isEmpty { data += "," + mountOptions.joined(separator: ",") }
        guard data.utf8.count < 4096 else {
            throw CrispError(.resourceExhausted, "overlay: \(lowers.count) lower layers make \(data.utf8.count) bytes of mount options, over the kernel's one-page limit")
        }
        try Mounts.mount(source: "overlay", target: dir + "/merged", type: "overlay", data: data)
        return dir + "/merged"
    }

    func unmount(_ id: LayerID) throws {
        try Mounts.unmount(layerDir(id) + "/merged")
    }

    /// The directories an overlay mount of `id` stacks, lowest last as overlay lists them.
    func layout(_ id: LayerID) -> OverlayLayout {
        let dir = layerDir(id)
        let lowers = (readSmallFile(dir + "/lower") ?? "").split(separator: ":").map { "\(home)/\($0)" }
        return OverlayLayout(lowers: lowers.isEmpty ? [home + "/empty"] : lowers, upper: dir + "/diff", work: dir + "/work")
    }

    func mountPoint(_ id: LayerID) -> String? { layerDir(id) + "/merged" }
    func changes(_ id: LayerID, parent: LayerID?) -> ChangesSource { .overlayUpper(changesDirectory(id)) }

    func layerIDsOnDisk() throws -> [String] {
        try listDirectory(home).filter(isLayerDirectoryName)
    }

    /// Removes `l/` links whose layer is gone (a crash between creating the link and the layer).
    func removeDanglingLinks() -> [String] {
        var removed: [String] = []
        for name in (try? listDirectory(home + "/l")) ?? [] {
            if access("\(home)/l/\(name)", F_OK) != 0 && errno == ENOENT {  // follows the link: its diff is gone
                unlink("\(home)/l/\(name)")
                removed.append(name)
            }
        }
        return removed
    }

    static func randomLinkName() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var g = SystemRandomNumberGenerator()
        return String((0..<linkLength).map { _ in alphabet[Int(g.next() % 32)] })
    }
}
