import CrispCore
import CrispOS
import Foundation
import Glibc
import Testing
@testable import CrispRuntime

/// StartContainer's own reading of runc's exec.fifo, against a stand-in for runc's init: a
/// shell that opens the fifo for writing (blocking until a reader comes, as runc's init does),
/// writes its byte and execs.
@Suite struct RuncExecFifoTests {
    /// A scratch directory under /var/tmp, removed by `remove()`.
    struct TempDirectory {
        let path: String
        init(_ prefix: String) throws {
            var template = Array("/var/tmp/\(prefix)-XXXXXX".utf8CString)
            guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw SystemCallError("mkdtemp", prefix, errno: errno)
            }
            path = String(cString: p)
        }
        func sub(_ name: String) -> String { path + "/" + name }
        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    /// A runc root with container `c1`: its state file naming `pid`, and an exec.fifo.
    static func root(pid: Int32, hooks: String = "", fifo: Bool = true) throws -> TempDirectory {
        let dir = try TempDirectory("runc-fifo")
        try FileManager.default.createDirectory(atPath: dir.sub("c1"), withIntermediateDirectories: true)
        let stat = try #require(readSmallFile("/proc/\(pid)/stat"))
        let start = try #require(ProcessIdentity.startTime(stat: stat))
        // runc 1.1 writes the hooks under libcontainer's untagged Go field name.
        let hookField = hooks.isEmpty ? "" : #","Hooks":\#(hooks)"#
        try #"{"id":"c1","init_process_pid":\#(pid),"init_process_start":\#(start),"config":{"rootfs":"/r"\#(hookField)}}"#
            .write(toFile: dir.sub("c1/state.json"), atomically: true, encoding: .utf8)
        if fifo { #expect(mkfifo(dir.sub("c1/exec.fifo"), 0o622) == 0) }
        return dir
    }

    /// A stand-in init running `script` with the fifo as $1, and a runc root naming it: the fifo
    /// is made first (the init blocks in open() until a reader comes) and moved into the root
    /// once the init's PID is known.
    static func withInit(_ script: String, _ body: (TempDirectory) async throws -> Void) async throws {
        let pending = try TempDirectory("runc-fifo-init")
        defer { pending.remove() }
        #expect(mkfifo(pending.sub("exec.fifo"), 0o622) == 0)
        let child = try Spawn.start(Spawn.Options(path: "/bin/sh", arguments: ["-c", script, "sh", pending.sub("exec.fifo")]))
        defer { child.signal(SIGKILL); _ = child.waitBlocking() }
        let dir = try root(pid: child.pid, fifo: false)
        defer { dir.remove() }
        #expect(rename(pending.sub("exec.fifo"), dir.sub("c1/exec.fifo")) == 0)
        try await body(dir)
    }

    @Test func theByteAndTheEndStartTheContainerAndTheFifoGoes() async throws {
        try await Self.withInit(#"printf 0 > "$1"; exec sleep 30"#) { (dir) async throws in
            #expect(try await RuncExecFifo.start(root: dir.path, id: "c1") == .started)
            #expect(access(dir.sub("c1/exec.fifo"), F_OK) != 0, "the fifo is removed, as runc start does")
        }
    }

    @Test func anInitThatDiedIsNotWaitedFor() async throws {
        let child = try Spawn.start(Spawn.Options(path: "/bin/sh", arguments: ["-c", "exit 0"]))
        // A zombie until reaped: its PID and start time still name it.
        var zombie = false
        for _ in 0..<5000 where !zombie {
            if ProcStat.fields(pid: child.pid)?.first == "Z" { zombie = true } else { usleep(1000) }
        }
        #expect(zombie)
        let dir = try Self.root(pid: child.pid)
        defer { dir.remove(); _ = child.waitBlocking() }
        do {
            _ = try await RuncExecFifo.start(root: dir.path, id: "c1")
            Issue.record("a container whose init died was started")
        } catch {
            #expect(error.code == .failedPrecondition && error.message.contains("already exited"), "\(error)")
        }
    }

    @Test func aWriterThatLeavesWithoutTheByteMeansAlreadyRunning() async throws {
        try await Self.withInit(#"exec 3>"$1"; exec 3>&-; exec sleep 30"#) { dir in
            do throws(CrispError) {
                _ = try await RuncExecFifo.start(root: dir.path, id: "c1")
                Issue.record("a start without the init's byte succeeded")
            } catch {
                #expect(error.code == .failedPrecondition && error.message.contains("already running"), "\(error)")
            }
        }
    }

    @Test func whatItDoesNotKnowGoesToTheRuntime() async throws {
        let me = getpid()
        let noState = try TempDirectory("runc-fifo")
        defer { noState.remove() }
        #expect(try await RuncExecFifo.start(root: noState.path, id: "c1") == .useRuntime, "no state file (crun)")
        let noFifo = try Self.root(pid: me, fifo: false)
        defer { noFifo.remove() }
        #expect(try await RuncExecFifo.start(root: noFifo.path, id: "c1") == .useRuntime, "no fifo (started already)")
        let hooked = try Self.root(pid: me, hooks: #"{"poststart":[{"path":"/bin/true","args":["true"]}]}"#)
        defer { hooked.remove() }
        #expect(try await RuncExecFifo.start(root: hooked.path, id: "c1") == .useRuntime, "poststart hooks")
        // Hooks of other kinds, and an empty poststart list, leave the fast path open: the fifo
        // is then read (here nobody writes, and the init is this process: the deadline ends it).
        let other = try Self.root(pid: me, hooks: #"{"poststart":null,"poststop":[{"path":"/bin/true"}]}"#)
        defer { other.remove() }
        do {
            _ = try await RuncExecFifo.start(root: other.path, id: "c1", timeout: .milliseconds(300))
            Issue.record("a fifo nobody writes started the container")
        } catch {
            #expect(error.code == .deadlineExceeded, "\(error)")
        }
    }
}
