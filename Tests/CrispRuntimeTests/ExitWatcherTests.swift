import CrispCore
import Foundation
import Testing
@testable import CrispRuntime

/// conmon writes an exit file as glib does: the whole content under `ID.XXXXXX`, then a rename
/// to `ID`. Only the final name is an exit.
@Suite struct ExitWatcherTests {
    @Test func aTemporaryNameIsNotAnExit() async throws {
        let dir = NSTemporaryDirectory() + "crisp-exits-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let watcher = try ExitWatcher(directory: dir)
        defer { watcher.stop() }
        var events = watcher.exits.makeAsyncIterator()
        try "137".write(toFile: dir + "/abc123.XK2P9Q", atomically: false, encoding: .utf8)
        // Events come in order: once the sentinel's arrives, the temporary file's was handled.
        try "0".write(toFile: dir + "/5e471e1", atomically: false, encoding: .utf8)
        let first = try #require(await events.next())
        #expect(first.id == "5e471e1", "the temporary file was recorded as an exit: \(first)")
        #expect(rename(dir + "/abc123.XK2P9Q", dir + "/abc123") == 0)
        let second = try #require(await events.next())
        #expect(second.id == "abc123" && second.exitCode == 137)
    }
}
