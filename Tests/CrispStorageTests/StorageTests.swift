import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import Glibc
import GRDB
import Logging
import Synchronization
import Testing
@testable import CrispStorage

@Suite("Storage")
struct StorageTests {
    @Test("a second open of the same root fails while the first holds the lock")
    func exclusiveLock() async throws {
        let f = try await StorageFixture.make("vfs")
        defer { f.tmp.remove() }
        await #expect(throws: CrispError.self) {
            _ = try await Storage.open(StorageOptions(root: f.tmp.sub("root"), runRoot: f.tmp.sub("run2"), driver: "vfs"), logger: Logger(label: "t"))
        }
        do {
            _ = try await Storage.open(StorageOptions(root: f.tmp.sub("root"), runRoot: f.tmp.sub("run2"), driver: "vfs"), logger: Logger(label: "t"))
        } catch let e as CrispError {
            #expect(e.code == .failedPrecondition && e.message.contains("locked by another process"))
        }
        await f.storage.close()
    }

    @Test("devicemapper and aufs are refused as unsupported on this host", arguments: ["devicemapper", "aufs"])
    func unsupportedDrivers(name: String) async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        do {
            _ = try await Storage.open(StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: name), logger: Logger(label: "t"))
            Issue.record("\(name) opened")
        } catch let e as CrispError {
            #expect(e.code == .failedPrecondition)
            #expect(e.message.contains("not supported on this host"))
        }
    }

    @Test("3-layer image: whiteouts and opaque dirs hide lower content in the container rootfs", arguments: copyAndOverlayDrivers)
    func threeLayerWhiteouts(driver: String) async throws {
        try await withStorage(driver) { f in
            let l1 = try await f.layer([.file("a/x", "x"), .file("a/y", "y"), .file("b/z", "z"), .file("d/old", "old"), .file("d/sub/old2", "o"),
                                        TarEntry("bin/tool", .file(.bytes(Array("tool".utf8))), mode: 0o755)])
            let l2 = try await f.layer([.file("a/.wh.x", ""), .dir("d"), .file("d/.wh..wh..opq", ""), .file("d/new", "new"),
                                        .hardlink("bin/tool-link", to: "bin/tool")], parent: l1)
            let l3 = try await f.layer([.file(".wh.b", ""), .file("top", "3")], parent: l2)
            let image = try await f.image("example.com/three:latest", top: l3)
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "c1", imageID: image.id))
            let root = try await f.storage.mountContainer(c.id)
            if driver == "overlay" { #expect(try Mounts.isMountPoint(root)) }
            #expect(listing(root) == ["a", "bin", "d", "top"])
            #expect(listing(root + "/a") == ["y"])
            #expect(listing(root + "/d") == ["new"])
            #expect(fileText(root + "/top") == "3")
            #expect(lstatOf(root + "/bin/tool-link")?.st_ino == lstatOf(root + "/bin/tool")?.st_ino)
            #expect(lstatOf(root + "/bin/tool")!.st_mode & 0o777 == 0o755)
            // The rootfs is writable and writes land in the container layer only.
            try writeFile(root + "/written", Array("rw".utf8))
            #expect(lstatOf(f.storage.driver.changesDirectory(c.layerID) + "/written") != nil)
            #expect(lstatOf(f.storage.driver.changesDirectory(l3.id) + "/written") == nil)
            try await f.storage.unmountContainer(c.id)
            if driver == "overlay" { #expect(try !Mounts.isMountPoint(root)) }
        }
    }

    @Test("storage_sync = filesystem: a layer with a large and a small file is synced and complete", arguments: copyAndOverlayDrivers)
    func syncedLayer(driver: String) async throws {
        let tmp = try TempDirectory("crisp-storage")
        defer { tmp.removeAll() }
        let storage = try await Storage.open(StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: driver, sync: .filesystem),
                                             logger: Logger(label: "t"))
        // 3 MiB is above the early-writeback threshold, so both paths of the sync mode run.
        let big = [UInt8](repeating: 7, count: 3 << 20)
        let tar = try TarBuilder.build([.file("small", "s"), TarEntry("big", .file(.bytes(big)), mode: 0o644)])
        let diff = diffDigest(of: tar)
        let layer = try await storage.applyLayer(CreateLayerOptions(id: LayerID.chainID(parent: nil, diffDigest: diff), parent: nil,
                                                                    expectedDiffDigest: diff),
                                                 chunks: ChunkSequence(bytes: tar, size: 65536))
        let dir = storage.driver.changesDirectory(layer.id)
        #expect(lstatOf(dir + "/big")?.st_size == 3 << 20)
        #expect(fileText(dir + "/small") == "s")
        #expect(try await storage.layer(layer.id) != nil)
        await storage.close()
    }

    @Test("mounts are reference counted, also under concurrent callers", arguments: copyAndOverlayDrivers)
    func mountRefcount(driver: String) async throws {
        try await withStorage(driver) { f in
            let l = try await f.layer([.file("etc/hostname", "h")])
            let image = try await f.image("example.com/one:1", top: l)
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "c", imageID: image.id))
            let storage = f.storage
            let paths = try await withThrowingTaskGroup(of: String.self) { g in
                for _ in 0..<10 { g.addTask { try await storage.mountContainer(c.id) } }
                return try await g.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(paths.count == 1)
            let path = paths.first!
            if driver == "overlay" { #expect(try Mounts.mountPoints(under: path).count == 1) }
            for expected in stride(from: 9, through: 1, by: -1) {
                #expect(try await storage.unmountContainer(c.id) == expected)
                #expect(fileText(path + "/etc/hostname") == "h")
            }
            #expect(try await storage.unmountContainer(c.id) == 0)
            if driver == "overlay" { #expect(try Mounts.mountPoints(under: path).isEmpty) }
            #expect(try await storage.unmountContainer(c.id) == 0, "unmounting an unmounted container is harmless")
            // Remove while mounted leaves no mount and no layer behind.
            _ = try await storage.mountContainer(c.id)
            try await storage.removeContainer(c.id)
            #expect(try Mounts.mountPoints(under: f.tmp.path).isEmpty)
            #expect(try await storage.container(c.id) == nil)
            #expect(try f.storage.driver.layerIDsOnDisk() == [l.id.rawValue])
        }
    }

    /// Found by the power-loss stress scenario (ext4, storage_sync = filesystem, copies as
    /// written back): a pull that had returned was missing after the cut. GRDB's pool replaced
    /// the FULL level with NORMAL on its writer when it turned WAL on, so no commit was fsynced.
    /// (The test that stood here read the level on a reader connection, which had FULL and
    /// commits nothing.)
    @Test("storage_sync = filesystem fsyncs every metadata commit; none does not", arguments: [StorageOptions.SyncMode.filesystem, .none])
    func metadataCommitsFollowTheSyncMode(sync: StorageOptions.SyncMode) async throws {
        let tmp = try TempDirectory("crisp-storage-sync")
        defer { tmp.removeAll() }
        let options = StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: "vfs", sync: sync)
        let storage = try await Storage.open(options, logger: Logger(label: "t"))
        #expect(try storage.metadata.synchronousLevel() == (sync == .filesystem ? MetadataStore.durableLevel : MetadataStore.relaxedLevel))
        await storage.close()
    }

    /// Found by the power-loss stress scenario (xfs, storage_sync = none): the metadata commit
    /// reached the disk and a layer's files did not, so the store listed an image on a layer
    /// without a directory. The next open drops the layer, what is built on it and its images.
    @Test("a layer whose directory was lost is removed at open with its image and containers")
    func lostLayersAreDroppedAtOpen() async throws {
        let tmp = try TempDirectory("crisp-storage-lost")
        defer { tmp.removeAll() }
        let options = StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: "vfs")
        var f = StorageFixture(tmp: tmp, storage: try await Storage.open(options, logger: Logger(label: "t")), driver: "vfs")
        let base = try await f.layer([.file("base", "b")])
        let top = try await f.layer([.file("a", "a")], parent: base)
        let lost = try await f.image("example.com/lost:1", top: top)
        let kept = try await f.image("example.com/kept:1", top: base)
        let c = try await f.storage.createContainer(CreateContainerOptions(name: "on-lost", imageID: lost.id))
        let home = f.storage.driver.home
        await f.storage.close()
        try FileManager.default.removeItem(atPath: home + "/dir/" + top.id.rawValue)
        f = StorageFixture(tmp: tmp, storage: try await Storage.open(options, logger: Logger(label: "t")), driver: "vfs")
        #expect(try await f.storage.image(lost.id) == nil)
        #expect(try await f.storage.container(c.id) == nil)
        #expect(try await f.storage.image(kept.id) != nil)
        #expect(try await f.storage.layer(base.id) != nil)
        #expect(try await f.storage.check().findings.filter { $0.severity == .error }.isEmpty)
        await f.storage.close()
    }

    /// With `sync = none`, a layer stored under one boot and not yet synced is dropped when the
    /// store opens under another boot (a power cut may have kept only part of it); under the same
    /// boot (crispd alone stopped) it is synced and kept.
    @Test("unsynced layers survive a daemon restart and are dropped after a reboot")
    func unsyncedLayersAfterAReboot() async throws {
        let tmp = try TempDirectory("crisp-storage-boot")
        defer { tmp.removeAll() }
        var options = StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: "vfs", sync: .none)
        options.bootID = "boot-1"
        var f = StorageFixture(tmp: tmp, storage: try await Storage.open(options, logger: Logger(label: "t")), driver: "vfs")
        let synced = try await f.layer([.file("s", "s")])
        let syncedImage = try await f.image("example.com/synced:1", top: synced)
        await f.storage.syncPoint()
        let pending = try await f.layer([.file("p", "p")])
        let pendingImage = try await f.image("example.com/pending:1", top: pending)
        #expect(try f.storage.metadata.unsyncedLayers().map(\.id) == [pending.id])
        await f.storage.simulateCrash()
        // crispd restarted, same boot: kept, and synced now.
        f = StorageFixture(tmp: tmp, storage: try await Storage.open(options, logger: Logger(label: "t")), driver: "vfs")
        #expect(try await f.storage.image(pendingImage.id) != nil)
        #expect(try f.storage.metadata.unsyncedLayers().isEmpty)
        let late = try await f.layer([.file("l", "l")])
        let lateImage = try await f.image("example.com/late:1", top: late)
        await f.storage.simulateCrash()
        // After a reboot the layer stored without a sync is not trusted.
        options.bootID = "boot-2"
        f = StorageFixture(tmp: tmp, storage: try await Storage.open(options, logger: Logger(label: "t")), driver: "vfs")
        #expect(try await f.storage.image(lateImage.id) == nil)
        #expect(try await f.storage.layer(late.id) == nil)
        #expect(try await f.storage.image(syncedImage.id) != nil)
        #expect(try await f.storage.image(pendingImage.id) != nil)
        #expect(try await f.storage.check().findings.filter { $0.severity == .error }.isEmpty)
        await f.storage.close()
    }

    /// Found by the racing-image stress scenario: a RemoveImage between a container's layer
    /// registration and its commit deleted the image row, so the commit failed on the foreign
    /// key (Internal to the client) and the image's layers stayed behind without an image.
    @Test("an image cannot be removed while a container on it is being created")
    func removalWaitsForACreationInProgress() async throws {
        try await withStorage("vfs") { f in
            let top = try await f.layer([.file("a", "a")])
            let image = try await f.image("example.com/a:1", top: top)
            let options = CreateContainerOptions(name: "racing", imageID: image.id)
            let layerID = LayerID.random()
            _ = try f.storage.metadata.beginContainer(options, layerID: layerID)
            await #expect(throws: CrispError.self) { try await f.storage.removeImage(image.id) }
            _ = try f.storage.metadata.commitContainer(options, layerID: layerID)
            #expect(try await f.storage.image(image.id) != nil)
        }
    }

    @Test("images sharing layers: removing one keeps the shared ones", arguments: copyAndOverlayDrivers)
    func sharedLayers(driver: String) async throws {
        try await withStorage(driver) { f in
            let base = try await f.layer([.file("base", "b")])
            let a = try await f.layer([.file("a", "a")], parent: base)
            let b = try await f.layer([.file("b", "b")], parent: base)
            let imageA = try await f.image("example.com/a:1", top: a)
            let imageB = try await f.image("example.com/b:1", top: b)
            let baseOnly = try await f.image("example.com/base:1", top: base)
            #expect(try await f.storage.removeImage(imageA.id) == [a.id])
            #expect(try await f.storage.layer(base.id) != nil)
            #expect(try await f.storage.layer(b.id) != nil)
            #expect(try await f.storage.removeImage(baseOnly.id) == [], "base still under b")
            // An image in use by a container cannot be removed.
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "user", imageID: imageB.id))
            await #expect(throws: CrispError.self) { try await f.storage.removeImage(imageB.id) }
            try await f.storage.removeContainer(c.id)
            #expect(Set(try await f.storage.removeImage(imageB.id)) == [b.id, base.id])
            #expect(try await f.storage.layers().isEmpty)
            #expect(try f.storage.driver.layerIDsOnDisk().isEmpty)
            #expect(try await f.storage.images().isEmpty)
        }
    }

    @Test("names, lookups, duplicate container names")
    func namesAndLookups() async throws {
        try await withStorage("vfs") { f in
            let l = try await f.layer([.file("f", "1")])
            let one = try await f.image("example.com/x:latest", top: l)
            #expect(try await f.storage.image(named: "example.com/x:latest")?.id == one.id)
            let two = try await f.image("example.com/y:latest", top: l)
            _ = try await f.storage.createImage(CreateImageOptions(id: two.id, names: ["example.com/x:latest"], topLayer: l.id))
            #expect(try await f.storage.image(named: "example.com/x:latest")?.id == two.id, "the tag moved")
            #expect(try await f.storage.image(one.id)?.names == [])
            _ = try await f.storage.createContainer(CreateContainerOptions(name: "same", imageID: one.id))
            await #expect(throws: CrispError.self) { try await f.storage.createContainer(CreateContainerOptions(name: "same", imageID: one.id)) }
            await #expect(throws: CrispError.self) { try await f.storage.createContainer(CreateContainerOptions(name: "other", imageID: diffDigest(of: [9]))) }
            #expect(try await f.storage.containers().count == 1)
            #expect(try await f.storage.layers().count == 2, "image layer + one container layer; failed creates left nothing")
        }
    }

    @Test("a digest mismatch leaves no layer, row or directory", arguments: copyAndOverlayDrivers)
    func digestMismatch(driver: String) async throws {
        try await withStorage(driver) { f in
            let tar = try TarBuilder.build([.file("f", "content")])
            let id = LayerID.random()
            await #expect(throws: CrispError.self) {
                try await f.storage.applyLayer(CreateLayerOptions(id: id, parent: nil, expectedDiffDigest: diffDigest(of: [1])),
                                               chunks: ChunkSequence(bytes: tar, size: 100))
            }
            #expect(try await f.storage.layer(id) == nil)
            #expect(try f.storage.metadata.allLayerIDs().isEmpty)
            #expect(try f.storage.driver.layerIDsOnDisk().isEmpty)
            // A failing stream fails the apply the same way.
            struct Broken: Error {}
            let stream = AsyncThrowingStream<[UInt8], any Error> { c in
                c.yield(Array(tar[0..<600]))
                c.finish(throwing: Broken())
            }
            await #expect(throws: CrispError.self) {
                try await f.storage.applyLayer(CreateLayerOptions(id: id, parent: nil, expectedDiffDigest: diffDigest(of: tar)), chunks: stream)
            }
            #expect(try f.storage.driver.layerIDsOnDisk().isEmpty)
        }
    }

    @Test("concurrent applies of two layers on one parent, and of the same layer", arguments: copyAndOverlayDrivers)
    func concurrentApplies(driver: String) async throws {
        try await withStorage(driver) { f in
            let base = try await f.layer([TarEntry("big", .file(.pattern(size: 4 << 20, seed: 1)))])
            async let a = f.layer([TarEntry("a", .file(.pattern(size: 2 << 20, seed: 2)))], parent: base)
            async let b = f.layer([TarEntry("b", .file(.pattern(size: 2 << 20, seed: 3)))], parent: base)
            async let a2 = f.layer([TarEntry("a", .file(.pattern(size: 2 << 20, seed: 2)))], parent: base)
            let (la, lb, la2) = try await (a, b, a2)
            #expect(la.parent == base.id && lb.parent == base.id && la.id == la2.id)
            #expect(try await f.storage.layers().count == 3)
        }
    }

    @Test("usage: image layers from recorded sizes, container layers measured", arguments: copyAndOverlayDrivers)
    func usage(driver: String) async throws {
        try await withStorage(driver) { f in
            let l = try await f.layer([TarEntry("big", .file(.pattern(size: 1 << 20, seed: 1))), .file("small", "s")])
            let image = try await f.image("example.com/u:1", top: l)
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "u", imageID: image.id))
            let root = try await f.storage.mountContainer(c.id)
            try writeFile(root + "/new", [UInt8](repeating: 1, count: 512 << 10))
            let u = try await f.storage.usage()
            #expect(u.images.usedBytes >= 1 << 20 && u.images.inodesUsed >= 2)
            #expect(u.containers.usedBytes >= 512 << 10 && u.containers.inodesUsed >= 2)
            #expect(u.images.mountpoint.hasPrefix(f.tmp.path))
            try await f.storage.unmountContainer(c.id)
        }
    }

    @Test("start-up removes stray mounts, incomplete layers and orphan directories")
    func startupCleanup() async throws {
        let tmp = try TempDirectory("crisp-recover")
        defer { tmp.remove() }
        let options = StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: "overlay")
        var s = try await Storage.open(options, logger: Logger(label: "t"))
        let f = StorageFixture(tmp: tmp, storage: s, driver: "overlay")
        let l = try await f.layer([.file("f", "1")])
        let image = try await f.image("example.com/r:1", top: l)
        let c = try await s.createContainer(CreateContainerOptions(name: "r", imageID: image.id))
        let root = try await s.mountContainer(c.id)
        // Simulate a crash: an incomplete layer row with a directory, an orphan directory, and
        // the mount still there; then drop the store without closing it.
        let half = LayerID.random(), orphan = LayerID.random()
        _ = try s.metadata.beginLayer(id: half, parent: l.id, kind: "image", diffDigest: nil, compressedDigest: nil, compressedSize: nil)
        _ = try s.driver.createLayer(half, parentChain: [l.id])
        _ = try s.driver.createLayer(orphan, parentChain: [])
        await s.close()  // releases the lock; the mount is gone, so put one back as a crash would leave it
        try Mounts.mount(source: "overlay", target: root, type: "overlay",
                         data: "lowerdir=\(s.driver.changesDirectory(l.id)),upperdir=\(s.driver.changesDirectory(c.layerID)),workdir=\(tmp.sub("root/overlay/\(c.layerID.rawValue)/work"))")
        s = try await Storage.open(options, logger: Logger(label: "t"))
        let cleaned = await s.lastRecovery
        #expect(cleaned.contains("stray mount \(root)"))
        #expect(cleaned.contains("incomplete layer \(half)"))
        #expect(cleaned.contains("orphan layer directory \(orphan.rawValue)"))
        #expect(try Set(s.driver.layerIDsOnDisk()) == [l.id.rawValue, c.layerID.rawValue])
        #expect(try await s.container(c.id) != nil)
        #expect(try Mounts.mountPoints(under: tmp.path).isEmpty)
        await s.close()
    }
}


@Suite("Driver options")
struct DriverOptionTests {
    @Test("overlay.mountopt is applied; unknown options are refused")
    func options() async throws {
        #expect(throws: CrispError.self) { _ = try makeStorageDriver(name: "vfs", root: "/nonexistent", options: ["vfs.ignore_chown_errors=true"]) }
        #expect(throws: CrispError.self) { _ = try makeStorageDriver(name: "overlay", root: "/nonexistent", options: ["overlay.mountopt=upperdir=/x"]) }
        let d = try makeStorageDriver(name: "overlay", root: "/nonexistent", options: ["overlay.mountopt=nodev,noatime"])
        #expect((d as? OverlayDriver)?.mountOptions == ["nodev", "noatime"])
        #expect(throws: CrispError.self) { _ = try makeStorageDriver(name: "zfs", root: "/nonexistent", options: []) }
        #expect(throws: CrispError.self) { _ = try makeStorageDriver(name: "nope", root: "/nonexistent", options: []) }
    }
}

@Suite("Cancellation")
struct CancellationTests {
    @Test("cancelling a streamed apply rolls the layer back")
    func cancelStreamedApply() async throws {
        try await withStorage("overlay") { f in
            let tar = try TarBuilder.build([TarEntry("f", .file(.pattern(size: 1 << 20, seed: 1)))])
            let digest = diffDigest(of: tar)
            let id = LayerID.chainID(parent: nil, diffDigest: digest)
            // A stream that hands over half the tar and then stalls until cancelled; asking it for
            // the second chunk says the first half has been taken in.
            let (stalledAt, reachedStall) = AsyncStream.makeStream(of: Void.self)
            let handed = Mutex(false)
            let half = Array(tar[0..<(tar.count / 2)])
            let stalled = AsyncThrowingStream<[UInt8], any Error> {
                let first = handed.withLock { done in
                    defer { done = true }
                    return !done
                }
                if first { return half }
                reachedStall.yield()
                try await Task.sleep(for: .seconds(3600))
                return nil
            }
            let storage = f.storage
            let task = Task { try await storage.applyLayer(CreateLayerOptions(id: id, parent: nil, expectedDiffDigest: digest), chunks: stalled) }
            for await _ in stalledAt { break }
            task.cancel()
            await #expect(throws: (any Error).self) { try await task.value }
            #expect(try await storage.layer(id) == nil)
            #expect(try storage.driver.layerIDsOnDisk().isEmpty)
            #expect(try storage.metadata.allLayerIDs().isEmpty)
        }
    }
}
