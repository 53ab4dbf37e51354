import CrispCore
import CrispRuntime
@testable import CrispService
import Foundation
import Testing

@Suite struct ImageVolumeTests {
    @Test func volumesAreMadeInsideTheRootEvenThroughASymlinkThatPointsOut() throws {
        let base = NSTemporaryDirectory() + "crisp-volumes-\(UUID().uuidString.prefix(8))"
        let root = base + "/rootfs", outside = base + "/outside"
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        // An image may carry a symlink that names a host path; it must resolve inside the rootfs.
        try FileManager.default.createSymbolicLink(atPath: root + "/vol", withDestinationPath: outside)
        try ContainerService.makeVolumeDirectories(["/data/cache", "/vol/x", "/mounted"], rootfs: root, except: ["/mounted"])
        var isDir: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: root + "/data/cache", isDirectory: &isDir) && isDir.boolValue)
        #expect(FileManager.default.fileExists(atPath: root + outside + "/x"), "the symlink was followed inside the root")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: outside))?.isEmpty == true, "nothing was made outside the root")
        #expect(!FileManager.default.fileExists(atPath: root + "/mounted"), "a path the request mounts is left alone")
    }
}
