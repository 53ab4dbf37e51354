import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import Glibc
import Logging
import Testing
@testable import CrispStorage

/// Kills a helper process (crisp-storage-crashhelper) with SIGKILL at random moments while it
/// applies two layers, then opens the store the way a restarted daemon would and checks that no
/// incomplete layer is visible, nothing is orphaned on disk, and applying again succeeds.
@Suite("Crash safety", .serialized)
struct CrashSafetyTests {
    static var helperPath: String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        let exe = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        // The test runner is .build/<config>/crispPackageTests.xctest; the helper sits beside it.
        return splitPath(exe).dir + "/crisp-storage-crashhelper"
    }

    struct LayerFiles {
        let path: String
        let digest: CrispCore.Digest
        let id: LayerID
        let lastFile: String
        let lastSize: Int
    }

    static func makeLayers(in dir: String) throws -> [LayerFiles] {
        var result: [LayerFiles] = []
        var parent: LayerID?
        for (n, (files, big)) in [(1500, 6 << 20), (800, 3 << 20)].enumerated() {
            var entries: [TarEntry] = [TarEntry("big\(n)", .file(.pattern(size: big, seed: UInt8(n))))]
            for i in 0..<files { entries.append(TarEntry("l\(n)/d\(i % 20)/f\(i)", .file(.pattern(size: 300 + i % 700, seed: UInt8(i & 0xff))))) }
            if n == 1 { entries.append(.file("l0/d0/.wh.f0", "")) }
            let last = "l\(n)/last"
            entries.append(TarEntry(last, .file(.pattern(size: 12345, seed: 9))))
            let path = "\(dir)/layer\(n).tar"
            try TarBuilder.write(entries, to: path)
            let digest = diffDigest(of: try readFile(path))
            let id = LayerID.chainID(parent: parent, diffDigest: digest)
            result.append(LayerFiles(path: path, digest: digest, id: id, lastFile: last, lastSize: 12345))
            parent = id
        }
        return result
    }

    /// Runs the helper; returns true when it was killed by the signal, false when it finished.
    /// Any other exit is a test failure.
    func runHelper(root: String, driver: String, layers: [LayerFiles], killAfter: Duration?) async throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.helperPath)
        p.arguments = [root, driver] + layers.flatMap { [$0.path, $0.digest.description] }
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        if let killAfter {
            try await Task.sleep(for: killAfter)
            kill(p.processIdentifier, SIGKILL)
        }
        p.waitUntilExit()
        if p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL { return true }
        #expect(p.terminationStatus == 0, "helper failed on its own (status \(p.terminationStatus))")
        return false
    }

    @Test("SIGKILL at random points during layer application, 20 times", arguments: ["overlay", "vfs"])
    func killDuringApply(driver: String) async throws {
        guard access(Self.helperPath, X_OK) == 0 else {
            print("skipping crash-safety test: helper \(Self.helperPath) not built (build with `swift build --build-tests`)")
            return
        }
        let tmp = try TempDirectory("crisp-crash")
        defer { tmp.remove() }
        let layers = try Self.makeLayers(in: tmp.path)
        let root = tmp.sub("root")
        // Calibrate: one uninterrupted run, then remove its layers.
        let start = ContinuousClock.now
        #expect(try await runHelper(root: root, driver: driver, layers: layers, killAfter: nil) == false)
        let fullRun = ContinuousClock.now - start
        try await verifyAndReset(root: root, driver: driver, layers: layers, iteration: -1)

        // Kill at a random moment within the expected run time; a run that finished before the
        // kill does not count and shrinks the window (the machine's speed varies a lot), until
        // 20 runs were killed mid-way.
        var killedMidway = 0, attempts = 0
        var window = fullRun
        while killedMidway < 20 && attempts < 80 {
            attempts += 1
            let delay = window * Double.random(in: 0.0...0.9)
            if try await runHelper(root: root, driver: driver, layers: layers, killAfter: delay) {
                killedMidway += 1
            } else {
                window = window * 0.7
            }
            try await verifyAndReset(root: root, driver: driver, layers: layers, iteration: attempts)
        }
        print("crash test (\(driver)): calibration run \(fullRun), \(killedMidway) runs killed mid-way in \(attempts) attempts")
        #expect(killedMidway == 20)
    }

    /// Opens the store as a restarted daemon, checks what is visible and on disk, re-applies both
    /// layers, then removes them for the next round.
    func verifyAndReset(root: String, driver: String, layers: [LayerFiles], iteration: Int) async throws {
        let s = try await Storage.open(StorageOptions(root: root, runRoot: root + "-run", driver: driver), logger: Logger(label: "crash"))
        let visible = try await s.layers()
        for layer in visible {
            guard let spec = layers.first(where: { $0.id == layer.id }) else {
                Issue.record("iteration \(iteration): unknown layer \(layer.id)"); continue
            }
            // Complete means the whole tar is there, down to its last entry.
            #expect(lstatOf(s.driver.changesDirectory(layer.id) + "/" + spec.lastFile)?.st_size == spec.lastSize,
                    "iteration \(iteration): visible layer \(layer.id) is incomplete")
        }
        #expect(try s.metadata.allLayerIDs() == Set(visible.map(\.id.rawValue)), "iteration \(iteration): incomplete rows left")
        #expect(try Set(s.driver.layerIDsOnDisk()) == Set(visible.map(\.id.rawValue)), "iteration \(iteration): orphan directories")
        if driver == "overlay" {
            #expect(listing(s.driver.home + "/l")?.count == visible.count, "iteration \(iteration): dangling short links")
        }
        var parent: LayerID?
        for spec in layers {
            let fd = open(spec.path, O_RDONLY | O_CLOEXEC)
            defer { close(fd) }
            let l = try await s.applyLayer(CreateLayerOptions(id: spec.id, parent: parent, expectedDiffDigest: spec.digest), fileDescriptor: fd)
            #expect(lstatOf(s.driver.changesDirectory(l.id) + "/" + spec.lastFile)?.st_size == spec.lastSize)
            parent = l.id
        }
        for spec in layers.reversed() { try await s.removeLayer(spec.id) }
        #expect(try s.driver.layerIDsOnDisk().isEmpty)
        await s.close()
    }
}
