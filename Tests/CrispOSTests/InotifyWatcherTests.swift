import CrispCore
import CrispTestSupport
import Glibc
import Testing
@testable import CrispOS

@Suite("InotifyWatcher")
struct InotifyWatcherTests {
    @Test("a file created after the watch is reported, with its name")
    func seesCreatedFile() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let watcher = try InotifyWatcher()
        let wd = try watcher.add(tmp.path, mask: [.create, .closeWrite])
        try writeFile(tmp.sub("exit-1"), [1])
        let wait = await runOnThread { watcher.next(timeout: .seconds(10)) }
        guard case .events(let events) = wait else {
            Issue.record("expected events, got \(wait)")
            return
        }
        #expect(events.contains { $0.watch == wd && $0.mask.contains(.create) && $0.nameString == "exit-1" })
    }

    @Test("a wait with nothing happening returns at its timeout")
    func timesOut() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let watcher = try InotifyWatcher()
        try watcher.add(tmp.path, mask: [.create])
        let start = ContinuousClock.now
        let wait = await runOnThread { watcher.next(timeout: .milliseconds(200)) }
        let took = ContinuousClock.now - start
        #expect(wait == .timedOut)
        // The upper bound only shows that the wait ends: with the whole suite starting at once on
        // two cores, getting back onto the cooperative pool has taken over 5 s.
        #expect(took >= .milliseconds(200) && took < .seconds(30))
    }

    @Test("stop wakes a waiting thread, and later waits return at once")
    func stopWakes() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let watcher = try InotifyWatcher()
        try watcher.add(tmp.path, mask: [.create])
        async let wait = runOnThread { watcher.next() }
        try await Task.sleep(for: .milliseconds(100))
        watcher.stop()
        #expect(await wait == .stopped)
        #expect(watcher.next(timeout: .seconds(10)) == .stopped)
    }

    @Test("names that are not UTF-8 arrive as their bytes")
    func rawNames() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let watcher = try InotifyWatcher()
        try watcher.add(tmp.path, mask: [.create])
        let name: [UInt8] = [0x78, 0xff, 0xfe, 0x80]
        let fd = open(RawPath(Array(tmp.path.utf8) + [0x2f] + name).c, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        close(fd)
        let wait = await runOnThread { watcher.next(timeout: .seconds(10)) }
        guard case .events(let events) = wait else {
            Issue.record("expected events, got \(wait)")
            return
        }
        #expect(events.map(\.name) == [name])
    }

    @Test("startLoop delivers batches on its thread until stop, then finishes")
    func loop() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let watcher = try InotifyWatcher()
        try watcher.add(tmp.path, mask: [.movedTo, .delete])
        let (names, cont) = AsyncStream.makeStream(of: String.self)
        watcher.startLoop(name: "test-inotify") { events in
            for e in events { cont.yield(e.nameString) }
        } finished: {
            cont.finish()
        }
        try writeFile(tmp.sub(".tmp"), [1])
        #expect(rename(tmp.sub(".tmp"), tmp.sub("moved")) == 0)
        #expect(unlink(tmp.sub("moved")) == 0)
        var seen: [String] = []
        for await n in names {
            seen.append(n)
            if seen.count == 2 { watcher.stop() }
        }
        #expect(seen == ["moved", "moved"])
    }

    @Test("the parser reads several events and drops a truncated one")
    func parse() {
        func event(_ wd: Int32, _ mask: UInt32, _ name: [UInt8], len: Int) -> [UInt8] {
            var b: [UInt8] = []
            withUnsafeBytes(of: wd.littleEndian) { b += $0 }
            withUnsafeBytes(of: mask.littleEndian) { b += $0 }
            withUnsafeBytes(of: UInt32(0)) { b += $0 }
            withUnsafeBytes(of: UInt32(len).littleEndian) { b += $0 }
            return b + name + [UInt8](repeating: 0, count: len - name.count)
        }
        let bytes = event(1, UInt32(IN_CREATE), [0x61, 0xff], len: 16) + event(2, UInt32(IN_DELETE_SELF), [], len: 0)
            + Array(event(3, UInt32(IN_CREATE), [0x62], len: 16).prefix(20))
        let events = bytes.withUnsafeBytes { InotifyEvent.parse($0) }
        #expect(events == [InotifyEvent(watch: 1, mask: .create, name: [0x61, 0xff]),
                           InotifyEvent(watch: 2, mask: .deleteSelf, name: [])])
    }
}
