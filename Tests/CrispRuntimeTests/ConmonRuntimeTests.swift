import CrispCore
import CrispOS
import Glibc
import CrispOCI
@testable import CrispRuntime
import Foundation
import Testing

/// Real containers through conmon and runc (and crun where it works on this host).
@Suite(.serialized) struct ConmonRuntimeTests {
    static let handlers = [
        RuntimeHandler(name: "runc", path: "/usr/sbin/runc", root: "/run/crisp-test-runc"),
        RuntimeHandler(name: "crun", path: "/usr/bin/crun", root: "/run/crisp-test-crun"),
    ]

    /// crun 1.8.1 cannot start containers on this host's cgroup v1 hybrid layout; find out by trying.
    static func skipReason(_ handler: RuntimeHandler) async -> String? {
        if let r = RuntimeWorld.unavailable(runtime: handler.path) { return r }
        guard handler.name == "crun" else { return nil }
        do {
            let world = try RuntimeWorld()
            let id = randomID()
            defer { Task { await world.cleanup(handler: handler, ids: [id]) } }
            let runtime = world.runtime()
            let spec = try SpecBuilder().build(world.input(id: id, command: ["/bin/true"])).spec
            _ = try await runtime.create(spec: spec, launch: world.launch(id: id, handler: handler))
            try await runtime.start(id: id, handler: handler)
            return nil
        } catch {
            return "crun cannot run a container on this host: \(error)"
        }
    }

    @Test(arguments: handlers)
    func lifecycleLogsAndExitCode(_ handler: RuntimeHandler) async throws {
        if let why = await Self.skipReason(handler) { print("skipped \(handler.name): \(why)"); return }
        let world = try RuntimeWorld()
        let id = randomID()
        let runtime = world.runtime()
        do {
            let long = String(repeating: "x", count: 20000)
            let spec = try SpecBuilder().build(world.input(id: id, command: [
                "/bin/sh", "-c", "echo hello; echo oops >&2; echo \(long); printf partial; exit 3",
            ])).spec
            let created = try await runtime.create(spec: spec, launch: world.launch(id: id, handler: handler))
            #expect(created.pid > 0)
            #expect(try await runtime.state(id: id, handler: handler).status == .created)
            try await runtime.start(id: id, handler: handler)
            let exit = await world.tracker.wait(for: id, timeout: .seconds(20))
            #expect(exit?.exitCode == 3)
            let lines = world.logLines(id: id)
            let pattern = #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) /#
            #expect(lines.allSatisfy { $0.contains(pattern) }, "\(lines.prefix(3))")
            #expect(lines.contains { $0.hasSuffix(" stdout F hello") })
            #expect(lines.contains { $0.hasSuffix(" stderr F oops") })
            // A line longer than conmon's buffer comes in P pieces that join to the whole line.
            let pieces = lines.filter { $0.contains(" stdout ") && $0.contains("xxxx") }
            let joined = pieces.map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" }.joined()
            #expect(joined.hasPrefix(long))
            #expect(lines.last?.hasSuffix(" stdout P partial") == true)
        } catch {
            Issue.record("\(error)")
        }
        await world.cleanup(handler: handler, ids: [id])
    }

    @Test(arguments: handlers)
    func execSyncOutputExitCodeAndTimeout(_ handler: RuntimeHandler) async throws {
        if let why = await Self.skipReason(handler) { print("skipped \(handler.name): \(why)"); return }
        let world = try RuntimeWorld()
        let id = randomID()
        let runtime = world.runtime()
        do {
            let spec = try SpecBuilder().build(world.input(id: id, command: [
                "/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done",
            ])).spec
            _ = try await runtime.create(spec: spec, launch: world.launch(id: id, handler: handler))
            try await runtime.start(id: id, handler: handler)

            var p = spec.process!
            p.args = ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"]
            let r = try await runtime.execSync(id: id, handler: handler, process: p, timeout: .seconds(20))
            #expect(r.exitCode == 7)
            #expect(String(decoding: r.stdout, as: UTF8.self) == "out\n")
            #expect(String(decoding: r.stderr, as: UTF8.self) == "err\n")
            #expect(!r.truncated)

            p.args = ["/bin/sleep", "100"]
            do {
                _ = try await runtime.execSync(id: id, handler: handler, process: p, timeout: .seconds(1))
                Issue.record("exec did not time out")
            } catch {
                #expect(error.code == .deadlineExceeded)
            }
            // The timed-out exec is gone from the container.
            p.args = ["/bin/sh", "-c", "ps -o args | grep -c '^sleep 100' || true"]
            let ps = try await runtime.execSync(id: id, handler: handler, process: p, timeout: .seconds(20))
            #expect(String(decoding: ps.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "0")

            let exit = try await runtime.stop(id: id, handler: handler, signal: .terminate, timeout: .seconds(10))
            #expect(exit.exit?.exitCode == 0)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: world.dir + "/scratch")) == [], "exec files are removed")
        } catch {
            Issue.record("\(error)")
        }
        await world.cleanup(handler: handler, ids: [id])
    }

    /// After a reboot the runtime knows none of the containers on record: a stop says so at once
    /// instead of waiting for an exit no one will record.
    @Test func stopOfAContainerTheRuntimeDoesNotKnowSaysSo() async throws {
        let handler = Self.handlers[0]
        if let why = RuntimeWorld.unavailable(runtime: handler.path) { print("skipped: \(why)"); return }
        let world = try RuntimeWorld()
        let start = ContinuousClock.now
        let outcome = try await world.runtime().stop(id: randomID(), handler: handler, signal: .terminate, timeout: .seconds(5))
        #expect(outcome == .unknownToRuntime)
        #expect(ContinuousClock.now - start < .seconds(5), "no wait for an exit")
        await world.cleanup(handler: handler, ids: [])
    }

    /// A cgroup runc cannot remove (a process still in it: the racing-image stress scenario saw a
    /// killed init's last threads outlive runc's rmdir retries) is removed by crisp after runc
    /// delete, once its processes are killed and gone. runc 1.1 reports success for a created
    /// container all the same, so without crisp's step the directory stayed.
    @Test func deleteRemovesTheCgroupsTheRuntimeLeftBusy() async throws {
        let handler = Self.handlers[0]
        if let why = RuntimeWorld.unavailable(runtime: handler.path) { print("skipped: \(why)"); return }
        guard let memory = CgroupHost.detect().v1MountPoints["memory"] else { print("skipped: no cgroup v1 memory hierarchy"); return }
        let world = try RuntimeWorld()
        let id = randomID()
        let runtime = world.runtime()
        let stray = memory + world.cgroupParent + "/crisp-" + id + "/stray"
        var sleeper: SpawnedChild?
        do {
            let spec = try SpecBuilder().build(world.input(id: id, command: ["/bin/true"])).spec
            _ = try await runtime.create(spec: spec, launch: world.launch(id: id, handler: handler))
            try FileManager.default.createDirectory(atPath: stray, withIntermediateDirectories: false)
            let child = try Spawn.start(Spawn.Options(path: "/bin/sleep", arguments: ["600"]))
            sleeper = child
            try "\(child.pid)\n".write(toFile: stray + "/cgroup.procs", atomically: false, encoding: .utf8)
            try await runtime.delete(id: id, handler: handler)
            let stays = FileManager.default.fileExists(atPath: memory + world.cgroupParent + "/crisp-" + id)
            #expect(!stays, "the container's memory cgroup stays")
            if stays { child.signal(SIGKILL) }
            #expect(await child.wait() == 128 + SIGKILL, "the process left in the cgroup is killed")
            do {
                _ = try await runtime.state(id: id, handler: handler)
                Issue.record("runc still knows the deleted container")
            } catch {
                #expect(error.code == .notFound)
            }
        } catch {
            Issue.record("\(error)")
        }
        sleeper?.signal(SIGKILL)
        _ = await sleeper?.wait()
        rmdir(stray)
        await world.cleanup(handler: handler, ids: [id])
    }

    @Test func cgroupMembershipIsReadFromProcCgroup() {
        let file = "12:memory:/crisp-it-1/crisp-abc\n11:pids:/crisp-it-1/crisp-abc\n0::/\n"
        #expect(CgroupLeftovers.isMember(cgroupFile: file, of: "/sys/fs/cgroup/memory/crisp-it-1/crisp-abc"))
        #expect(!CgroupLeftovers.isMember(cgroupFile: file, of: "/sys/fs/cgroup/memory/crisp-it-1/crisp-abcd"))
        #expect(!CgroupLeftovers.isMember(cgroupFile: "0::/\n", of: "/sys/fs/cgroup/unified/x"), "the root names no container")
    }

    /// ExecSync and streaming exec files of a crispd killed mid-exec are removed at the next start.
    @Test func clearScratchRemovesWhatAnInterruptedExecLeft() async throws {
        let world = try RuntimeWorld()
        let runtime = world.runtime()
        let left = world.dir + "/scratch/exec-interrupted"
        try FileManager.default.createDirectory(atPath: left, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: left + "/process.json", contents: Data("{}".utf8))
        try runtime.clearScratch()
        #expect((try FileManager.default.contentsOfDirectory(atPath: world.dir + "/scratch")) == [])
        await world.cleanup(handler: Self.handlers[0], ids: [])
    }

    @Test(arguments: handlers)
    func stopKillsAProcessThatIgnoresSigterm(_ handler: RuntimeHandler) async throws {
        if let why = await Self.skipReason(handler) { print("skipped \(handler.name): \(why)"); return }
        let world = try RuntimeWorld()
        let id = randomID()
        let runtime = world.runtime()
        do {
            let spec = try SpecBuilder().build(world.input(id: id, command: [
                "/bin/sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done",
            ])).spec
            _ = try await runtime.create(spec: spec, launch: world.launch(id: id, handler: handler))
            try await runtime.start(id: id, handler: handler)
            // Wait until the trap is installed (the shell printed "ready").
            let ready = ContinuousClock.now + .seconds(10)
            while !world.logLines(id: id).contains(where: { $0.hasSuffix("ready") }), ContinuousClock.now < ready {
                try await Task.sleep(for: .milliseconds(20))
            }
            let start = ContinuousClock.now
            let exit = try await runtime.stop(id: id, handler: handler, signal: .terminate, timeout: .seconds(2))
            let took = ContinuousClock.now - start
            #expect(exit.exit?.exitCode == 137)
            #expect(took >= .seconds(2))
        } catch {
            Issue.record("\(error)")
        }
        await world.cleanup(handler: handler, ids: [id])
    }

    @Test func capabilitiesAndUserAreApplied() async throws {
        let handler = Self.handlers[0]
        if let why = RuntimeWorld.unavailable(runtime: handler.path) { print("skipped: \(why)"); return }
        let world = try RuntimeWorld()
        let id = randomID()
        let runtime = world.runtime()
        do {
            var input = world.input(id: id, command: ["/bin/sh", "-c", "grep CapEff /proc/self/status; id -u; id -g; touch /x || echo readonly"])
            input.security.dropCapabilities = ["ALL"]
            input.security.addCapabilities = ["NET_RAW"]
            input.security.runAsUsername = "nobody"
            input.security.readonlyRootfs = true
            let spec = try SpecBuilder().build(input).spec
            _ = try await runtime.create(spec: spec, launch: world.launch(id: id, handler: handler))
            try await runtime.start(id: id, handler: handler)
            let exit = await world.tracker.wait(for: id, timeout: .seconds(20))
            #expect(exit?.exitCode == 0)
            let text = world.logLines(id: id).map { $0.split(separator: " ", maxSplits: 3).last.map(String.init) ?? "" }
            // CAP_NET_RAW is bit 13; a non-root user keeps no effective capabilities without ambient ones.
            #expect(text.contains { $0.hasPrefix("CapEff:") })
            #expect(text.contains("65534"))
            #expect(text.contains("readonly"))
        } catch {
            Issue.record("\(error)")
        }
        await world.cleanup(handler: handler, ids: [id])
    }
}
