import CrispCore
import Glibc
import Testing
@testable import CrispOS

@Suite struct ProcessIdentityTests {
    @Test func theStartTimeIsField22CountedAfterTheCommand() {
        let stat = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 8185048 2400000 300 18446744073709551615"
        #expect(ProcessIdentity.startTime(stat: stat) == 8185048)
        #expect(ProcessIdentity.startTime(stat: "4242 (x) S 1") == nil)
        #expect(ProcessIdentity.startTime(stat: "no command") == nil)
    }

    @Test func aProcessIsSignalledOnlyWhileItIsTheOneThatStartedThen() async throws {
        let child = try Spawn.start(Spawn.Options(path: "/bin/sleep", arguments: ["30"]))
        let stat = try #require(readSmallFile("/proc/\(child.pid)/stat"))
        let start = try #require(ProcessIdentity.startTime(stat: stat))
        // Another start time is another process that happens to have the PID now: left alone.
        #expect(try ProcessIdentity.signal(pid: child.pid, startedAt: start + 1, SIGTERM) == .gone)
        #expect(kill(child.pid, 0) == 0)
        #expect(try ProcessIdentity.signal(pid: child.pid, startedAt: start, SIGTERM) == .sent)
        #expect(await child.wait() == 128 + SIGTERM)
        // Reaped: the PID names nothing (or someone else).
        #expect(try ProcessIdentity.signal(pid: child.pid, startedAt: start, SIGTERM) == .gone)
        #expect(try ProcessIdentity.signal(pid: 0, startedAt: start, SIGTERM) == .gone)
    }
}
