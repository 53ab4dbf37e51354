import CrispCore
import CrispOS
import Foundation
import Glibc

/// vfs: each layer is a full copy of its parent plus its own changes, in `<home>/dir/<id>`.
/// Works on any filesystem (tmpfs, overlay); costs a copy per layer. "Mounting" hands out the
/// directory itself.
struct VFSDriver: StorageDriver {
    let home: String
    var name: String { "vfs" }
    var copiesParent: Bool { true }

    func layerDir(_ id: LayerID) -> String { "\(home)/dir/\(id.rawValue)" }
    func changesDirectory(_ id: LayerID) -> String { layerDir(id) }

    func check() throws {
        try makeDirectories(home + "/dir")
    }

    func createLayer(_ id: LayerID, parentChain: [LayerID]) throws -> ApplyTarget {
        let dir = layerDir(id)
        if mkdir(dir, 0o755) != 0 { throw SystemCallError("mkdir", dir, errno: errno) }
        if let parent = parentChain.first {
            do {
                try copyTree(from: layerDir(parent), to: dir)
            } catch {
                try? DirectoryWalk.removeTree(dir)
                throw error
            }
        }
        return ApplyTarget(root: dir, whiteouts: .remove)
    }

    func removeLayer(_ id: LayerID) throws { try DirectoryWalk.removeTree(layerDir(id)) }
    func mount(_ id: LayerID, parentChain: [LayerID]) throws -> String { layerDir(id) }
    func unmount(_ id: LayerID) throws {}
    func mountPoint(_ id: LayerID) -> String? { nil }
    func changes(_ id: LayerID, parent: LayerID?) -> ChangesSource { .compare(layer: layerDir(id), parent: parent.map(layerDir)) }
    func layerIDsOnDisk() throws -> [String] { try listDirectory(home + "/dir").filter(isLayerDirectoryName) }
}

/// Copies a layer tree with owners, modes, times, xattrs (file capabilities too), hard links,
/// devices and sparse files, reflinking where the filesystem can. GNU cp does all of this
/// correctly; rewriting it here would only add bugs. Started through CrispOS's `Spawn`, the one
/// way crisp starts programs; `setpriv --pdeathsig KILL` makes cp die with the daemon (the
/// calling thread waits for it): an orphaned cp would keep writing into a directory that
/// start-up clean-up is removing.
func copyTree(from source: String, to destination: String) throws {
    let errors = try Pipe2()
    var o = Spawn.Options(path: "/usr/bin/setpriv",
                          arguments: ["--pdeathsig", "KILL", "--", "/bin/cp", "-a", "--reflink=auto", "--", source + "/.", destination + "/"])
    o.descriptors[2] = errors.write
    let child: SpawnedChild
    do { child = try Spawn.start(o) } catch {
        errors.closeBoth()
        throw error
    }
    errors.closeWrite()
    var message: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(errors.read, &buffer, buffer.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        if message.count < 64 << 10 { message += buffer.prefix(n) }
    }
    errors.closeRead()
    let status = child.waitBlocking()
    guard status == 0 else {
        throw CrispError.internal("copying layer \(source) to \(destination) failed (exit \(status)): \(String(decoding: message, as: UTF8.self))")
    }
}
