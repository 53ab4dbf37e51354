import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Logging
import Testing
@testable import CrispStorage

/// The btrfs driver on a loop-mounted btrfs image this test creates; skipped (with the reason
/// printed) when mkfs.btrfs, loop devices or btrfs mounts are unavailable.
@Suite("Btrfs driver", .serialized)
struct BtrfsDriverTests {
    /// Creates a 320 MB btrfs image, loop-mounts it, runs `body` with the mount point, and always
    /// unmounts (autoclear frees the loop device) and removes everything.
    static func withBtrfs(_ body: (String) async throws -> Void) async throws {
        let tmp = try TempDirectory("crisp-btrfs")
        defer { tmp.remove() }
        let image = tmp.sub("fs.img"), mnt = tmp.sub("mnt")
        guard access("/usr/sbin/mkfs.btrfs", X_OK) == 0 || access("/sbin/mkfs.btrfs", X_OK) == 0 else {
            print("skipping btrfs test: mkfs.btrfs not installed (apt btrfs-progs)")
            return
        }
        let fd = open(image, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, ftruncate(fd, 320 << 20) == 0 else {
            print("skipping btrfs test: cannot create the image file")
            return
        }
        close(fd)
        let mkfs = try runCommand(["/usr/sbin/mkfs.btrfs", "-q", "-f", image])
        guard mkfs.status == 0 else {
            print("skipping btrfs test: mkfs.btrfs failed: \(mkfs.output)")
            return
        }
        mkdir(mnt, 0o755)
        let mount = try runCommand(["/bin/mount", "-o", "loop", "-t", "btrfs", image, mnt])
        guard mount.status == 0 else {
            print("skipping btrfs test: loop mount of btrfs failed: \(mount.output)")
            return
        }
        defer {
            for m in (try? Mounts.mountPoints(under: mnt)) ?? [] { try? Mounts.unmount(m, detach: true) }
        }
        try await body(mnt)
    }

    @Test("layers are subvolumes and snapshots; whiteouts, entry types, containers, removal")
    func endToEnd() async throws {
        try await Self.withBtrfs { mnt in
            try await withStorage("btrfs", root: mnt + "/root") { f in
                let s = f.storage
                let l1 = try await f.layer(fidelityEntries() + [.file("a/x", "x"), .file("a/y", "y"), .file("d/old", "o")])
                let l2 = try await f.layer([.file("a/.wh.x", ""), .file("d/.wh..wh..opq", ""), .file("d/new", "n"),
                                            .hardlink("bin/su-again", to: "bin/su")], parent: l1)
                // A snapshot child never changes its parent.
                #expect(lstatOf(s.driver.changesDirectory(l1.id) + "/a/x") != nil)
                #expect(lstatOf(s.driver.changesDirectory(l2.id) + "/a/x") == nil)
                #expect(listing(s.driver.changesDirectory(l2.id) + "/d") == ["new"])
                let image = try await f.image("example.com/btrfs:1", top: l2)
                let c = try await s.createContainer(CreateContainerOptions(name: "b", imageID: image.id))
                let root = try await s.mountContainer(c.id)
                #expect(listing(root + "/a") == ["y"])
                #expect(xattr(root + "/bin/ping", "security.capability") == netBindCapability)
                #expect(lstatOf(root + "/bin/su")!.st_mode & 0o7777 == 0o4755)
                #expect(lstatOf(root + "/bin/su-again")?.st_ino == lstatOf(root + "/bin/su")?.st_ino)
                #expect(lstatOf(root + "/dev/null")!.st_rdev == makedevice(1, 3))
                try writeFile(root + "/rw", [1])
                #expect(lstatOf(s.driver.changesDirectory(l2.id) + "/rw") == nil)
                let before = try runCommand(["/usr/bin/btrfs", "subvolume", "list", mnt])
                #expect(before.output.contains("subvolumes/\(l1.id.rawValue)") && before.output.contains("subvolumes/\(c.layerID.rawValue)"),
                        "each layer is a subvolume: \(before.output)")
                try await s.unmountContainer(c.id)
                try await s.removeContainer(c.id)
                #expect(Set(try await s.removeImage(image.id)) == [l1.id, l2.id])
                #expect(try s.driver.layerIDsOnDisk().isEmpty)
                let subvolumes = try runCommand(["/usr/bin/btrfs", "subvolume", "list", mnt])
                #expect(!subvolumes.output.contains("subvolumes/"), "no subvolume left: \(subvolumes.output)")
            }
        }
    }

    @Test("the btrfs driver refuses a root that is not on btrfs")
    func refusesOtherFilesystems() async throws {
        do {
            let f = try await StorageFixture.make("btrfs")
            await f.close()
            Issue.record("btrfs opened on \(f.tmp.path)")
        } catch let e as CrispError {
            #expect(e.code == .failedPrecondition && e.message.contains("not on a btrfs filesystem"))
        }
    }
}
