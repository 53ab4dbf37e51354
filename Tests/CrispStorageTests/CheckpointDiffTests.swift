import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

/// The root filesystem part of a checkpoint archive, in CRI-O's shape: a plain tar of what was
/// added or changed, deletions as a list, mount targets left out; restored by removing the list
/// and untarring on a fresh container of the same image.
@Suite("Checkpoint diff")
struct CheckpointDiffTests {
    @Test("changes export without whiteouts, deletions are listed, excluded paths are left out, and a restore reproduces the view",
          arguments: copyAndOverlayDrivers)
    func checkpointDiffRoundTrip(driver: String) async throws {
        try await withStorage(driver) { f in
            let s = f.storage
            let base = try await f.layer([
                .file("etc/gone", "bye"), .file("dir/a", "a"), .file("dir/sub/b", "b"), .file("keep/k", "k"), .file("data/old", "old"),
            ])
            let image = try await f.image("example.com/ckpt:1", top: base)
            let c = try await s.createContainer(CreateContainerOptions(name: "dumped", imageID: image.id))
            let root = try await s.mountContainer(c.id)
            try writeFile(root + "/keep/k", Array("changed".utf8))
            try writeFile(root + "/fresh", Array("new".utf8))
            #expect(unlink(root + "/etc/gone") == 0)
            try DirectoryWalk.removeTree(root + "/dir")
            #expect(mkdir(root + "/dir", 0o755) == 0)
            try writeFile(root + "/dir/replaced", Array("r".utf8))
            // A volume's target and /proc: what the runtime mounts there is not the container's.
            try writeFile(root + "/data/volume-file", Array("v".utf8))
            #expect(mkdir(root + "/proc", 0o555) == 0 || errno == EEXIST)

            let tarPath = f.tmp.sub("rootfs-diff.tar")
            let out = open(tarPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            let diff: CheckpointDiff
            do { diff = try await s.exportContainerChangesForCheckpoint(c.id, to: out, excluding: ["/data", "/proc"]) } catch {
                close(out)
                throw error
            }
            close(out)
            let members = try runCommand(["/usr/bin/tar", "-tf", tarPath]).output.split(separator: "\n").map(String.init)
            #expect(!members.contains { $0.contains(".wh.") }, "no whiteout files: \(members)")
            #expect(members.contains("keep/k") && members.contains("fresh") && members.contains("dir/replaced"), "\(members)")
            #expect(!members.contains { $0.hasPrefix("data") || $0.hasPrefix("proc") }, "excluded paths carried: \(members)")
            #expect(diff.deleted.contains("/etc/gone"), "\(diff.deleted)")
            // overlay marks the replaced directory opaque; the copy drivers see its old children gone.
            #expect(driver == "overlay" ? diff.deleted.contains("/dir") : (diff.deleted.contains("/dir/a") && diff.deleted.contains("/dir/sub")),
                    "\(diff.deleted)")

            // Restore on a new container of the same image: deletions first, then the tar.
            let c2 = try await s.createContainer(CreateContainerOptions(name: "restored", imageID: image.id))
            let root2 = try await s.mountContainer(c2.id)
            try TreeArchive.remove(diff.deleted, under: root2)
            let input = open(tarPath, O_RDONLY | O_CLOEXEC)
            defer { close(input) }
            try TreeArchive.extract(fd: input, into: root2)
            #expect(try readFile(root2 + "/keep/k") == Array("changed".utf8))
            #expect(try readFile(root2 + "/fresh") == Array("new".utf8))
            #expect(listing(root2 + "/dir") == ["replaced"])
            #expect(lstatOf(root2 + "/etc/gone") == nil)
            #expect(lstatOf(root2 + "/data/volume-file") == nil)
            #expect(try readFile(root2 + "/data/old") == Array("old".utf8))
            try await s.unmountContainer(c.id)
            try await s.unmountContainer(c2.id)
        }
    }

    @Test("a tree archive round-trips, and removal cannot leave its root through a symlink")
    func treeArchiveAndContainedRemoval() throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let source = tmp.sub("source"), target = tmp.sub("target"), outside = tmp.sub("outside")
        for d in [source, source + "/checkpoint", target, outside] { #expect(mkdir(d, 0o755) == 0) }
        try writeFile(source + "/config.dump", Array("{}".utf8))
        try writeFile(source + "/checkpoint/inventory.img", [1, 2, 3])
        let tarPath = tmp.sub("archive.tar")
        let out = open(tarPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try TreeArchive.write(directory: source, to: out)
        close(out)
        let input = open(tarPath, O_RDONLY | O_CLOEXEC)
        try TreeArchive.extract(fd: input, into: target)
        close(input)
        #expect(try readFile(target + "/checkpoint/inventory.img") == [1, 2, 3])
        #expect(try readFile(target + "/config.dump") == Array("{}".utf8))

        try writeFile(outside + "/precious", Array("keep".utf8))
        #expect(symlink(outside, target + "/escape") == 0)
        try TreeArchive.remove(["/escape/precious", "/config.dump"], under: target)
        #expect(try readFile(outside + "/precious") == Array("keep".utf8), "removal followed a symlink out of the root")
        #expect(lstatOf(target + "/config.dump") == nil)
    }
}
