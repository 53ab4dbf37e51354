import CrispCore
import CrispTestSupport
import Glibc
import Testing
@testable import CrispOS

@Suite("Spawn")
struct SpawnTests {
    func sh(_ script: String) -> Spawn.Options { Spawn.Options(path: "/bin/sh", arguments: ["-c", script]) }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test("exit codes and signals come back as status")
    func exitCodes() async throws {
        #expect(try await Spawn.run(sh("exit 0")).status == 0)
        #expect(try await Spawn.run(sh("exit 3")).status == 3)
        #expect(try await Spawn.run(sh("kill -9 $$")).status == 128 + 9)
        await #expect(throws: CrispError.self) { try await Spawn.run(Spawn.Options(path: "/nonexistent/program")) }
    }

    @Test("stdout and stderr are captured separately, and capped")
    func capture() async throws {
        let out = try await Spawn.run(sh("echo out; echo err >&2"))
        #expect(text(out.stdout) == "out\n")
        #expect(out.stderrText == "err")
        let big = try await Spawn.run(sh("head -c 300000 /dev/zero"), cap: 1000)
        #expect(big.stdout.count == 1000 && big.stdoutTruncated && big.status == 0)
    }

    @Test("stdin reaches the child (round trip through cat, larger than a pipe buffer)")
    func stdinRoundTrip() async throws {
        let input = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let out = try await Spawn.run(Spawn.Options(path: "/bin/cat"), stdin: input)
        #expect(out.status == 0 && out.stdout == input)
        // A child that never reads its stdin must not wedge or kill the writer (EPIPE, no SIGPIPE).
        let ignored = try await Spawn.run(sh("exec 0<&-; echo done"), stdin: [UInt8](repeating: 1, count: 1 << 20))
        #expect(text(ignored.stdout) == "done\n")
    }

    @Test("the environment is exactly what was given")
    func environment() async throws {
        let out = try await Spawn.run(Spawn.Options(path: "/usr/bin/env", environment: ["A=1", "B=two"]))
        #expect(text(out.stdout) == "A=1\nB=two\n")
    }

    @Test("a timeout kills the child and reaps it")
    func timeoutKillsAndReaps() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let out = try await Spawn.run(sh("echo $$; exec sleep 30"), timeout: .milliseconds(300))
        // Far below the 30 s the child would sleep: it was killed, however loaded the machine is.
        #expect(clock.now - start < .seconds(25))
        #expect(out.timedOut && out.status == 128 + SIGKILL)
        let pid = try #require(Int32(text(out.stdout).split(separator: "\n").first ?? ""))
        #expect(access("/proc/\(pid)", F_OK) != 0)  // no zombie left behind
    }

    @Test("onTimeout runs before the kill; a child that exits meanwhile is not killed")
    func onTimeoutFirst() async throws {
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        let pidFile = tmp.sub("pid")
        let clock = ContinuousClock()
        let start = clock.now
        let out = try await Spawn.run(sh("trap 'exit 7' USR1; echo $$ > \(pidFile); while :; do sleep 0.05; done"),
                                      timeout: .milliseconds(300)) {
            if let pid = readSmallFile(pidFile).flatMap({ Int32($0.split(separator: "\n").first ?? "") }) { kill(pid, SIGUSR1) }
        }
        // Status 7 is the trap's: the child left on onTimeout's signal, not on the SIGKILL.
        #expect(out.timedOut && out.status == 7 && clock.now - start < .seconds(25))
    }

    @Test("a grandchild holding stdout open does not hold up the result")
    func grandchildKeepsPipe() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let out = try await Spawn.run(sh("sleep 60 & echo $!"))
        // Far below the grandchild's 60 s: the result did not wait for the pipe's last writer.
        #expect(clock.now - start < .seconds(30))
        let grandchild = try #require(Int32(text(out.stdout).split(separator: "\n").first ?? ""))
        kill(grandchild, SIGKILL)  // the test's own process; nothing else waits for it
    }

    @Test("a cancelled caller kills and reaps the child")
    func cancellation() async throws {
        let task = Task { try await Spawn.run(sh("echo $$; exec sleep 30")) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let out = try await task.value
        #expect(out.status == 128 + SIGKILL)
        let pid = try #require(Int32(text(out.stdout).split(separator: "\n").first ?? ""))
        #expect(access("/proc/\(pid)", F_OK) != 0)
    }

    @Test("signal dispositions are default in the child even when the parent ignores SIGTERM")
    func signalsReset() async throws {
        let old = signal(SIGTERM, SIG_IGN)
        defer { signal(SIGTERM, old) }
        let out = try await Spawn.run(Spawn.Options(path: "/bin/grep", arguments: ["-E", "^Sig(Ign|Blk):", "/proc/self/status"]))
        // Masks of signals 1–31 (glibc keeps its internal real-time signals 32 and 33 to itself).
        let masks = text(out.stdout).split(separator: "\n").map { UInt64($0.split(separator: "\t").last ?? "", radix: 16) ?? 1 }
        #expect(masks.count == 2 && masks.allSatisfy { $0 & 0x7fff_ffff == 0 })
        let killed = try await Spawn.run(sh("kill -TERM $$; sleep 5"))
        #expect(killed.status == 128 + SIGTERM)
    }

    @Test("descriptors not listed are closed in the child; listed ones are there")
    func descriptorsClosed() async throws {
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec: posix_spawn alone would pass it on
        defer { close(leaked) }
        let extra = try Pipe2()
        defer { extra.closeBoth() }
        var o = Spawn.Options(path: "/bin/ls", arguments: ["/proc/self/fd"])
        o.descriptors[5] = extra.write
        let out = try await Spawn.run(o)
        // 3 is the directory ls opened to list it.
        let fds = text(out.stdout).split(separator: "\n").compactMap { Int($0) }.sorted()
        #expect(fds == [0, 1, 2, 3, 5])
    }

    @Test("start + wait: the status through the pidfd, the child reaped")
    func startAndWait() async throws {
        let child = try Spawn.start(sh("exit 4"))
        #expect(await child.wait() == 4)
        #expect(access("/proc/\(child.pid)", F_OK) != 0)
        child.signal(SIGKILL)  // after the reap: a no-op, never a stranger's PID
        #expect(try Spawn.start(sh("exit 5")).waitBlocking() == 5)
    }
}
