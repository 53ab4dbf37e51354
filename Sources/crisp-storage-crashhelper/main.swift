// Test helper for the storage crash-safety test: opens a storage root and applies layers from tar
// files, so the test can SIGKILL it at a random moment and check what a restart finds.
//
// usage: crisp-storage-crashhelper ROOT DRIVER TAR DIGEST [TAR DIGEST]...
// Each tar is applied on top of the previous one. Prints "applied <id>" after each.
import CrispCore
import CrispStorage
import Glibc
import Logging

@main
struct CrashHelper {
    static func main() async {
        let args = CommandLine.arguments
        guard args.count >= 5, (args.count - 3) % 2 == 0 else {
            writeLine(2, "usage: crisp-storage-crashhelper ROOT DRIVER TAR DIGEST [TAR DIGEST]...")
            exit(2)
        }
        do {
            let storage = try await Storage.open(StorageOptions(root: args[1], runRoot: args[1] + "-run", driver: args[2]),
                                                 logger: Logger(label: "crashhelper"))
            var parent: LayerID?
            var i = 3
            while i < args.count {
                let digest = try Digest(parsing: args[i + 1])
                let id = LayerID.chainID(parent: parent, diffDigest: digest)
                let fd = open(args[i], O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw SystemCallError("open", args[i], errno: errno) }
                defer { close(fd) }
                let layer = try await storage.applyLayer(CreateLayerOptions(id: id, parent: parent, expectedDiffDigest: digest), fileDescriptor: fd)
                writeLine(1, "applied \(layer.id)")
                parent = layer.id
                i += 2
            }
            await storage.close()
        } catch {
            writeLine(2, "crashhelper: \(error)")
            exit(1)
        }
    }

    static func writeLine(_ fd: Int32, _ s: String) {
        let line = Array((s + "\n").utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
