import IntegrationSupport
import CRIAPI
import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import RegistryTestSupport
import Synchronization
import Testing

/// Power loss (issue 16). crispd's root lives on a filesystem in a loop-mounted image file. At a
/// random moment of a workload (pulls and removals of a multi-layer image, pod and container
/// lifecycles) the image file is copied as the disk would be found after a power cut: either as
/// it is (what the filesystem has written back so far; its dirty pages are missing), or frozen
/// with fsfreeze (a crash-consistent instant, everything written back). The image file lives on
/// a btrfs filesystem of the test's own, so that the copy is a reflink: one instant of the loop
/// device, taken while crispd and the kernel go on writing. (A `cp` that reads for a second or
/// two while the kernel writes back is torn: it can hold a journal block from before and a
/// checkpointed block from after, a disk no power cut leaves. Stopping crispd for the `cp` did
/// not stop the kernel's writeback, and such copies lost finished pulls.) The copy is checked with the
/// filesystem's own checker, mounted, and a crispd is started on it with a fresh runroot, as after
/// a reboot. Its store must open and check clean without a wipe, every image it lists must be
/// whole and make a container, and with storage_sync = filesystem every pull that had returned
/// before the cut must still be there. Only one crispd runs at a time: before the copy is
/// started on, the first crispd is killed and its containers, mounts and pins are removed, so the
/// two never act on the same host objects; it then restarts on its own root, as after a reboot.
@Suite(.serialized) struct StressPowerLossTests {
    typealias Lifecycle = CRI

    static func shell(_ argv: [String]) async throws -> (status: Int32, output: String) {
        try await runOnThread(name: "power-loss-shell") { () throws -> (status: Int32, output: String) in try runCommand(argv) }
    }

    /// A filesystem in an image file, loop-mounted at `mountPoint`.
    final class LoopFilesystem: @unchecked Sendable {
        // @unchecked: used by one test at a time.
        let image: String
        let mountPoint: String
        private(set) var device = ""

        init(image: String, mountPoint: String) {
            self.image = image
            self.mountPoint = mountPoint
        }

        /// `copy`: the image is a copy of a mounted one, whose UUID xfs refuses to see twice.
        func attach(copy: Bool = false) async throws {
            let r = try await StressPowerLossTests.shell(["/usr/sbin/losetup", "--find", "--show", image])
            guard r.status == 0 else { throw TestFailure("losetup \(image): \(r.output)") }
            device = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            let m = try await StressPowerLossTests.shell(["/bin/mount"] + (copy ? ["-o", "nouuid"] : []) + [device, mountPoint])
            guard m.status == 0 else { throw TestFailure("mount \(device) \(mountPoint): \(m.output)") }
        }

        /// Unmounts (lazily if busy) and detaches; safe to call twice.
        func detach() {
            for m in mounts(under: mountPoint).reversed() { umount2(m, Int32(MNT_DETACH)) }
            if !device.isEmpty { _ = try? runCommand(["/usr/sbin/losetup", "-d", device]); device = "" }
            rmdir(mountPoint)
        }

        /// Mount points at or below `path`, in mount order.
        func mounts(under path: String) -> [String] {
            (readSmallFile("/proc/self/mountinfo") ?? "").split(separator: "\n").compactMap { line in
                let target = line.split(separator: " ").dropFirst(4).first.map(String.init) ?? ""
                return target == path || target.hasPrefix(path + "/") ? target : nil
            }
        }

        func mountpoint(_ path: String) -> Bool {
            (readSmallFile("/proc/self/mountinfo") ?? "").split(separator: "\n").contains { $0.split(separator: " ").dropFirst(4).first == Substring(path) }
        }
    }

    final class StopFlag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    /// What the workload saw: when each pull of the image returned and each removal began, and
    /// when each container's create returned and its pod's removal began.
    final class Ledger: Sendable {
        private let events = Mutex<[(at: ContinuousClock.Instant, pulled: Bool)]>([])
        private let containers = Mutex<[(at: ContinuousClock.Instant, id: String, pod: String)]>([])
        private let podRemovals = Mutex<[String: ContinuousClock.Instant]>([:])
        func pulled() { events.withLock { $0.append((.now, true)) } }
        func removing() { events.withLock { $0.append((.now, false)) } }
        func created(container id: String, pod: String) { containers.withLock { $0.append((.now, id, pod)) } }
        func removing(pod: String) { podRemovals.withLock { $0[pod] = .now } }
        /// Containers whose create returned before `start` and whose pod's removal had not begun
        /// by `end`: with storage_sync = filesystem the copy must hold them, storage included.
        func mustHaveContainers(cutStart start: ContinuousClock.Instant, end: ContinuousClock.Instant) -> [String] {
            let removals = podRemovals.withLock { $0 }
            return containers.withLock { $0 }.filter { c in c.at < start && !(removals[c.pod].map { $0 < end } ?? false) }.map(\.id)
        }
        /// Whether a pull returned before `start` with no removal begun between it and `end`.
        func mustHave(cutStart start: ContinuousClock.Instant, end: ContinuousClock.Instant) -> Bool {
            let all = events.withLock { $0 }
            guard let lastPull = all.last(where: { $0.pulled && $0.at < start }) else { return false }
            return !all.contains { !$0.pulled && $0.at > lastPull.at && $0.at < end }
        }
    }

    static func workload(_ crispd: CrispdProcess, world: CRIWorld, image: String, ledger: Ledger,
                         until stop: @escaping @Sendable () -> Bool, findings: StressFindings) async {
        do {
            try await crispd.withClients { [world] runtime, images in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        while !stop() {
                            do {
                                var pull = Runtime_V1_PullImageRequest()
                                pull.image.image = image
                                _ = try await images.pullImage(pull)
                                ledger.pulled()
                                findings.count()
                                // Held a while, so that cuts often fall after a finished pull.
                                try await Task.sleep(for: .milliseconds(Int.random(in: 0...1000)))
                                if stop() { return }
                                ledger.removing()
                                var remove = Runtime_V1_RemoveImageRequest()
                                remove.image.image = image
                                _ = try await images.removeImage(remove)
                                findings.count()
                            } catch {
                                if !stop() { findings.add("image workload: \(error)") }
                                return
                            }
                        }
                    }
                    group.addTask {
                        var n = 0
                        while !stop() {
                            n += 1
                            do {
                                let pod = try await Lifecycle.runPod(runtime, "pl-\(UUID().uuidString.prefix(6))-\(n)", world: world)
                                let c = try await Lifecycle.startContainer(runtime, pod: pod, "c", ["/bin/sleep", "600"])
                                ledger.created(container: c, pod: pod.id)
                                findings.count(2)
                                if Bool.random() {
                                    var stopC = Runtime_V1_StopContainerRequest()
                                    stopC.containerID = c
                                    _ = try await runtime.stopContainer(stopC)
                                }
                                if Bool.random() {
                                    ledger.removing(pod: pod.id)
                                    try await Lifecycle.removePod(runtime, pod.id)
                                    findings.count()
                                }
                            } catch {
                                if !stop() { findings.add("pod workload: \(error)") }
                                return
                            }
                        }
                    }
                }
            }
        } catch {
            if !stop() { findings.add("workload client: \(error)") }
        }
    }

    /// crisp's btrfs storage driver on btrfs, overlay elsewhere.
    static func driver(for fs: String) -> String { fs == "btrfs" ? "btrfs" : "overlay" }

    static func config(mode: String, driver: String) -> String {
        "[crisp]\nstorage_sync = \"\(mode)\"\nstorage_driver = \"\(driver)\"\n[crisp.image]\npause_image = \"\"\n"
    }

    /// Checks the copy: fsck, mount, a crispd on it with a fresh runroot; its store, its images
    /// and, with `mustHaveImage`, the image a finished pull had stored. Removes all it made.
    static func verifyCopy(_ copy: String, fs: String, mode: String, image: String, mustHaveImage: Bool,
                           mustHaveContainers: [String] = [],
                           template: CrispdProcess, findings: StressFindings, label: String) async throws {
        if fs == "ext4" {
            // -y replays the journal as a mount would and repairs; 4 or more is damage it could not mend.
            let r = try await shell(["/usr/sbin/e2fsck", "-fy", copy])
            if r.status >= 4 { findings.add("\(label): e2fsck \(r.status): \(r.output.suffix(500))") }
        }
        let verifier = try CrispdProcess()
        let fsCopy = LoopFilesystem(image: copy, mountPoint: NSTemporaryDirectory() + "crisp-copy-\(UUID().uuidString.prefix(8))")
        defer { fsCopy.detach() }
        // btrfs: the kernel mounts a copy whose fsid is in use under a temporary fsid (6.7+).
        try await fsCopy.attach(copy: fs == "xfs")
        // xfs_repair refuses a dirty log and btrfs check a log tree not replayed: the mount above
        // replayed them, as after a reboot; the check runs unmounted.
        let checker: [String]? = fs == "xfs" ? ["/usr/sbin/xfs_repair", "-n"] : fs == "btrfs" ? ["/usr/bin/btrfs", "check", "--readonly"] : nil
        if let checker {
            umount2(fsCopy.mountPoint, 0)
            let r = try await shell(checker + [fsCopy.device])
            if r.status != 0 { findings.add("\(label): \(checker.joined(separator: " ")) \(r.status): \(r.output.suffix(500))") }
            let m = try await shell(["/bin/mount"] + (fs == "xfs" ? ["-o", "nouuid"] : []) + [fsCopy.device, fsCopy.mountPoint])
            guard m.status == 0 else { throw TestFailure("remount \(fsCopy.device): \(m.output)") }
        }
        verifier.root = fsCopy.mountPoint + "/root"
        try FileManager.default.copyItem(atPath: template.dir + "/registries.conf", toPath: verifier.dir + "/registries.conf")
        try verifier.writeConfig(config(mode: mode, driver: driver(for: fs)))
        verifier.environment.append("CRISP_BOOT_ID=\(UUID().uuidString)")  // as after a reboot
        try await verifier.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(verifier.dir)/runc-root"])
        let world = CRIWorld(crispd: verifier, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        defer { world.cleanup() }
        try await verifier.withClients { [world] runtime, images in
            let report = try await verifier.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            for f in report.findings where f.severity == "error" { findings.add("\(label): store: \(f.subject): \(f.problem)") }
            let listed = try await images.listImages(Runtime_V1_ListImagesRequest()).images
            if mustHaveImage, !listed.contains(where: { $0.repoTags.contains(image) }) {
                let startUp = verifier.log.split(separator: "\n").filter { $0.contains("start-up") }.joined(separator: "\n")
                findings.add("\(label): \(image) was pulled before the cut, but the copy lists \(listed.map(\.repoTags)); start-up:\n\(startUp)")
            }
            let pods = try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items
            let containers = try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers
            for c in containers {
                _ = try await Lifecycle.status(runtime, c.id)
            }
            let listedIDs = Set(containers.map(\.id))
            let lostStorage = verifier.log.split(separator: "\n").filter { $0.contains("container storage lost") }
            for id in mustHaveContainers {
                if !listedIDs.contains(id) {
                    findings.add("\(label): container \(id) was created before the cut, but the copy does not list it")
                } else if let line = lostStorage.first(where: { $0.contains(id) }) {
                    findings.add("\(label): container \(id) was created before the cut, but its storage was lost: \(line)")
                }
            }
            if !listed.isEmpty {
                let pod = try await Lifecycle.runPod(runtime, "verify", world: world)
                for i in listed {
                    do {
                        let c = try await Lifecycle.startContainer(runtime, pod: pod, "v-\(i.id.suffix(6))", ["/bin/busybox", "true"]) {
                            $0.image.image = i.id
                        }
                        let s = try await Lifecycle.waitExited(runtime, c)
                        if s.state != .containerExited {
                            findings.add("\(label): a container of listed image \(i.id) did not exit: \(s.state) \(s.reason) \(s.message)\n\(verifier.log.suffix(3000))")
                        } else if s.exitCode != 0 { findings.add("\(label): a container of listed image \(i.id) exited \(s.exitCode)") }
                    } catch {
                        findings.add("\(label): listed image \(i.id) \(i.repoTags) cannot run a container: \(error)")
                    }
                }
            }
            // After a reboot the runtime knows none of the recorded containers: stopping and
            // removing them must not wait for exits that never come (it took 10 s per container).
            let removal = ContinuousClock.now
            for p in try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items {
                try await Lifecycle.removePod(runtime, p.id)
            }
            // The bound shows that no 10 s wait is left (it was two per container), not the
            // machine's speed: a loaded CI host took 2 s per pod.
            if ContinuousClock.now - removal > .seconds(5) + .seconds(9) * pods.count {
                findings.add("\(label): removing \(pods.count) pods of the previous boot took \(ContinuousClock.now - removal)")
            }
            // A pull on the copy works (an interrupted one included).
            var pull = Runtime_V1_PullImageRequest()
            pull.image.image = image
            _ = try await images.pullImage(pull)
        }
        let cleanupStart = ContinuousClock.now
        world.cleanup()
        if ContinuousClock.now - cleanupStart > .seconds(10) { print("  \(label): the verifying crispd took \(ContinuousClock.now - cleanupStart) to stop") }
        world.assertNoLeaks()
        let left = fsCopy.mounts(under: fsCopy.mountPoint).dropFirst()
        if !left.isEmpty { findings.add("\(label): mounts left on the copy: \(left)") }
    }

    /// Kills crispd and removes what its containers hold on the host, as a power cut would have
    /// (containers, mounts, namespace pins), keeping its on-disk state.
    static func cutPower(_ crispd: CrispdProcess, world: CRIWorld) {
        // Also the pods whose RunPodSandbox the cut interrupted: only their run directory names
        // them, and a reboot would have taken their pins with /run.
        let pods = world.podIDs + ((try? FileManager.default.contentsOfDirectory(atPath: crispd.runRoot + "/sandboxes")) ?? [])
        crispd.signal(SIGKILL)
        let runcRoot = crispd.dir + "/runc-root"
        for id in (try? FileManager.default.contentsOfDirectory(atPath: runcRoot)) ?? [] {
            _ = try? runCommand(["/usr/sbin/runc", "--root", runcRoot, "delete", "--force", id])
        }
        for line in (readSmallFile("/proc/self/mountinfo") ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[4].hasPrefix(crispd.runRoot) || fields[4].hasPrefix(crispd.root + "/storage/overlay/") {
                umount2(String(fields[4]), Int32(MNT_DETACH))
            }
        }
        for path in pods.flatMap(CRIWorld.pinPaths) where FileManager.default.fileExists(atPath: path) {
            umount2(path, Int32(MNT_DETACH))
            unlink(path)
        }
        try? FileManager.default.removeItem(atPath: crispd.runRoot)
    }

    /// btrfs runs crisp's btrfs storage driver (layers as subvolumes and snapshots); the others
    /// the overlay driver.
    @Test(arguments: [("ext4", "filesystem"), ("xfs", "none"), ("btrfs", "filesystem")])
    func powerLossNeedsNoWipe(fs: String, mode: String) async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        guard TestRegistry.available else { print("skipped: \(TestRegistry.binary) is not installed"); return }
        let mkfs = "/usr/sbin/mkfs.\(fs)"
        guard FileManager.default.isExecutableFile(atPath: mkfs) else { print("skipped: \(mkfs) is not installed"); return }
        guard (readSmallFile("/proc/filesystems") ?? "").contains("\t\(fs)\n") else { print("skipped: the kernel has no \(fs)"); return }
        let copies = StressSize.pick(quick: 2, full: 50)
        if let only = ProcessInfo.processInfo.environment["CRISP_STRESS_FS"], only != fs { return }  // one filesystem, by hand

        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pusher = RegistryPusher(host: registry.host)
        do {
            _ = try await pusher.pushImage("power/app", tag: "1", layers: [
                try FixtureLayer.busybox(), FixtureLayer([.file("etc/a", String(repeating: "a", count: 400_000))]),
                FixtureLayer([.file("etc/b", "b")]),
            ])
        } catch {
            try? await pusher.shutdown()
            throw error
        }
        try? await pusher.shutdown()
        let image = "\(registry.host)/power/app:1"

        var crispd = try CrispdProcess()
        var generations = [crispd]
        // The host of the disk image: btrfs, for reflink copies (see the suite's comment).
        let host = LoopFilesystem(image: NSTemporaryDirectory() + "crisp-host-\(UUID().uuidString.prefix(8)).img",
                                  mountPoint: NSTemporaryDirectory() + "crisp-host-\(UUID().uuidString.prefix(8))")
        defer {
            host.detach()
            try? FileManager.default.removeItem(atPath: host.image)
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.btrfs") else { print("skipped: /usr/sbin/mkfs.btrfs is not installed"); return }
        try await Self.shell(["/usr/bin/truncate", "-s", "4G", host.image])
        let hostMade = try await Self.shell(["/usr/sbin/mkfs.btrfs", "-q", "-f", host.image])
        guard hostMade.status == 0 else { throw TestFailure("mkfs.btrfs: \(hostMade.output)") }
        try await host.attach()
        let disk = LoopFilesystem(image: host.mountPoint + "/disk.img",
                                  mountPoint: NSTemporaryDirectory() + "crisp-disk-\(UUID().uuidString.prefix(8))")
        defer {
            disk.detach()
            try? FileManager.default.removeItem(atPath: disk.image)
        }
        try await Self.shell(["/usr/bin/truncate", "-s", "1G", disk.image])
        let made = try await Self.shell([mkfs, "-q"] + (fs == "ext4" ? ["-F"] : ["-f"]) + [disk.image])
        let driver = Self.driver(for: fs)
        guard made.status == 0 else { throw TestFailure("\(mkfs): \(made.output)") }
        try await disk.attach()
        crispd.root = disk.mountPoint + "/root"
        try "[[registry]]\nlocation = \"\(registry.host)\"\ninsecure = true\n"
            .write(toFile: crispd.dir + "/registries.conf", atomically: true, encoding: .utf8)
        try crispd.writeConfig(Self.config(mode: mode, driver: driver))
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot, driver: driver)
        let extra = ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"]
        try await crispd.start(extra: extra)
        var world = CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        defer { world.cleanup() }
        let findings = StressFindings()
        let ledger = Ledger()
        var mustHaves = 0
        var containersChecked = 0
        let started = ContinuousClock.now

        for n in 1...copies {
            let frozen = n % 2 == 0
            let label = "\(fs)/\(mode) copy \(n) (\(frozen ? "frozen" : "as written back"))"
            let copy = disk.image + "-copy"
            defer { try? FileManager.default.removeItem(atPath: copy) }
            let stopFlag = StopFlag()
            let current = crispd, currentWorld = world
            let cut: (start: ContinuousClock.Instant, end: ContinuousClock.Instant) = try await withThrowingTaskGroup(of: (ContinuousClock.Instant, ContinuousClock.Instant)?.self) { group in
                group.addTask {
                    await Self.workload(current, world: currentWorld, image: image, ledger: ledger,
                                        until: { stopFlag.isSet }, findings: findings)
                    return nil
                }
                group.addTask {
                    // At least one operation of this copy's workload finishes first: on ext4 with
                    // storage_sync = filesystem the first pull takes longer than the old 2 s at
                    // most, so quick runs cut before anything had finished (0 operations in CI).
                    let before = findings.operationCount
                    await withTaskGroup(of: Void.self) { wait in
                        wait.addTask { await findings.reach(before + 1) }
                        wait.addTask { try? await Task.sleep(for: .seconds(60)) }
                        await wait.next()
                        wait.cancelAll()
                    }
                    try await Task.sleep(for: .milliseconds(Int.random(in: 200...2000)))
                    let start = ContinuousClock.now
                    // A reflink holds the image file's inode lock while it clones, so the loop
                    // device's writes land wholly before or wholly after: one instant of the disk.
                    if frozen { _ = try await Self.shell(["/usr/sbin/fsfreeze", "-f", disk.mountPoint]) }
                    let r = try await Self.shell(["/bin/cp", "--reflink=always", disk.image, copy])
                    if frozen { _ = try await Self.shell(["/usr/sbin/fsfreeze", "-u", disk.mountPoint]) }
                    guard r.status == 0 else { throw TestFailure("copying \(disk.image): \(r.output)") }
                    let end = ContinuousClock.now
                    // The power is cut: nothing crispd does after the copy reaches that disk.
                    stopFlag.set()
                    Self.cutPower(current, world: currentWorld)
                    return (start, end)
                }
                var cut: (ContinuousClock.Instant, ContinuousClock.Instant)?
                for try await r in group { if let r { cut = r } }
                return cut!
            }
            let verifyStart = ContinuousClock.now
            let mustHave = mode == "filesystem" && ledger.mustHave(cutStart: cut.start, end: cut.end)
            if mustHave { mustHaves += 1 }
            let mustHaveContainers = mode == "filesystem" ? ledger.mustHaveContainers(cutStart: cut.start, end: cut.end) : []
            containersChecked += mustHaveContainers.count
            try await Self.verifyCopy(copy, fs: fs, mode: mode, image: image, mustHaveImage: mustHave,
                                      mustHaveContainers: mustHaveContainers, template: crispd,
                                      findings: findings, label: label)
            let restartStart = ContinuousClock.now
            // The first crispd comes back on its own disk, as after a reboot.
            crispd = try CrispdProcess(dir: current.dir)
            crispd.root = current.root
            generations.append(crispd)
            try await crispd.start(extra: extra)
            world = CRIWorld(crispd: crispd, cgroupParent: world.cgroupParent)
            let report = try await crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            for f in report.findings where f.severity == "error" { findings.add("\(label): the original after restart: \(f.subject): \(f.problem)") }
            print("  \(label): copied in \(cut.end - cut.start), checked in \(restartStart - verifyStart), original back in \(ContinuousClock.now - restartStart)\(mustHave ? ", a finished pull had to survive" : "")")
        }
        let elapsed = ContinuousClock.now - started
        try await crispd.withClients { [crispd] runtime, images in
            for pod in try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items {
                try await Lifecycle.removePod(runtime, pod.id)
            }
            var remove = Runtime_V1_RemoveImageRequest()
            remove.image.image = image
            _ = try await images.removeImage(remove)
            let report = try await crispd.withCrispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            #expect(report.findings.filter { $0.severity == "error" }.isEmpty, "\(report.findings)")
        }
        world.assertNoLeaks()
        let left = disk.mounts(under: disk.mountPoint).dropFirst()
        #expect(left.isEmpty, "mounts left on the disk: \(left)")
        crispd.signal(SIGTERM)
        _ = generations
        let problems = findings.all
        let unfrozen = copies - copies / 2
        print("stress power loss \(fs), storage_sync = \(mode): \(copies) copies (\(unfrozen) as written back, \(copies - unfrozen) frozen), "
              + "\(findings.operationCount) operations, \(mustHaves) with a finished pull that had to survive, "
              + "\(containersChecked) created containers checked for their storage, \(problems.count) problems, \(elapsed)")
        #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    }
}
