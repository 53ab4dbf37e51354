import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Logging
import Testing
@testable import CrispStorage

@Suite("Mounts across a daemon restart")
struct MountRestartTests {
    @Test("a crashed daemon's container mounts survive the restart and the refcount continues", arguments: copyAndOverlayDrivers)
    func mountsSurviveRestart(driver: String) async throws {
        let tmp = try TempDirectory("crisp-restart")
        defer { tmp.removeAll() }  // unmounts whatever a failing expectation left
        let options = StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: driver)
        let first = try await Storage.open(options, logger: Logger(label: "t"))
        let f = StorageFixture(tmp: tmp, storage: first, driver: driver)
        let l = try await f.layer([.file("etc/hostname", "h")])
        let image = try await f.image("example.com/restart:1", top: l)
        let c = try await first.createContainer(CreateContainerOptions(name: "running", imageID: image.id))
        let root = try await first.mountContainer(c.id)
        try writeFile(root + "/written-before", Array("x".utf8))
        // A stray mount nothing accounts for, as a crash in the middle of a mount could leave.
        let stray = first.driver.mountPoint(l.id) ?? ""
        if driver == "overlay" { try Mounts.mount(source: "tmpfs", target: stray, type: "tmpfs") }
        await first.simulateCrash()

        let second = try await reopen(options)
        do {
            let cleaned = await second.lastRecovery
            if driver == "overlay" {
                #expect(try Mounts.isMountPoint(root), "the running container's rootfs stays mounted")
                #expect(cleaned.contains("stray mount \(stray)"))
                #expect(try !Mounts.isMountPoint(stray))
                #expect(!cleaned.contains { $0.contains(root) })
            }
            #expect(try await second.mountPath(c.id) == root)
            #expect(fileText(root + "/written-before") == "x")
            // A second mount is free (same path, one kernel mount), and only the last unmount unmounts.
            #expect(try await second.mountContainer(c.id) == root)
            if driver == "overlay" { #expect(try Mounts.mountPoints(under: root).count == 1) }
            #expect(try await second.unmountContainer(c.id) == 1)
            if driver == "overlay" { #expect(try Mounts.isMountPoint(root)) }
            #expect(try await second.unmountContainer(c.id) == 0)
            if driver == "overlay" { #expect(try !Mounts.isMountPoint(root)) }
            #expect(try await second.mountPath(c.id) == nil)
            // Mounted again, then removed: nothing stays mounted.
            _ = try await second.mountContainer(c.id)
            try await second.removeContainer(c.id)
            #expect(try Mounts.mountPoints(under: tmp.path).isEmpty)
        } catch {
            await second.close()
            throw error
        }
        await second.close()
    }

    @Test("a recorded mount whose rootfs is gone (host reboot) is reset, and close() resets the counts")
    func recordWithoutMount() async throws {
        let tmp = try TempDirectory("crisp-restart")
        defer { tmp.removeAll() }
        let options = StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: "overlay")
        let first = try await Storage.open(options, logger: Logger(label: "t"))
        let f = StorageFixture(tmp: tmp, storage: first, driver: "overlay")
        let l = try await f.layer([.file("a", "a")])
        let image = try await f.image("example.com/reboot:1", top: l)
        let c = try await first.createContainer(CreateContainerOptions(name: "gone", imageID: image.id))
        let root = try await first.mountContainer(c.id)
        _ = try await first.mountContainer(c.id)
        await first.simulateCrash()
        try Mounts.unmount(root)  // what a reboot does

        let second = try await reopen(options)
        let cleaned = await second.lastRecovery
        #expect(cleaned.contains { $0.hasPrefix("mount record (count 2) of container \(c.id)") })
        #expect(try second.metadata.recordedMounts().isEmpty)
        #expect(try await second.mountPath(c.id) == nil)
        _ = try await second.mountContainer(c.id)
        await second.close()
        #expect(try !Mounts.isMountPoint(root))

        let third = try await reopen(options)
        #expect(try third.metadata.recordedMounts().isEmpty, "close() unmounted and recorded zero")
        #expect(await third.lastRecovery.isEmpty)
        await third.close()
    }
}

/// Opens the store again after `simulateCrash`/`close` in this same process. A child that
/// another test is spawning at this moment can briefly hold a copy of the lock file's descriptor
/// (between clone and exec, before O_CLOEXEC closes it), and flock follows that copy; a real
/// restart is a new process and never sees this. So a lock conflict is retried a bounded number
/// of times.
func reopen(_ options: StorageOptions) async throws -> Storage {
    var attempt = 0
    while true {
        do {
            return try await Storage.open(options, logger: Logger(label: "t"))
        } catch let e as CrispError where e.code == .failedPrecondition && e.message.contains("is locked by another process") && attempt < 100 {
            attempt += 1
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
