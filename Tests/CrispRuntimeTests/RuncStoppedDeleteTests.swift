import CrispCore
import CrispOS
import CrispOCI
import Foundation
import Glibc
import Testing
@testable import CrispRuntime

/// crisp's own delete of an exited runc container, against real runc and conmon: it must leave
/// what `runc delete` leaves (no state, no cgroups), and hand runc every case runc does more in.
@Suite(.serialized) struct RuncStoppedDeleteTests {
    static let handler = RuntimeHandler(name: "runc", path: "/usr/sbin/runc", root: "/run/crisp-test-runc")

    /// Creates a container running `command` through conmon, with `hooks` (runtime-spec form)
    /// added to its config: crisp's own specs carry none.
    static func create(_ world: RuntimeWorld, id: String, command: [String], hooks: [String: Any]? = nil) async throws {
        let runtime = world.runtime()
        let spec = try SpecBuilder().build(world.input(id: id, command: command)).spec
        let launch = world.launch(id: id, handler: handler)
        try Bundle.write(spec: spec, to: launch.bundle)
        if let hooks {
            let url = URL(fileURLWithPath: launch.bundle + "/config.json")
            var json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            json["hooks"] = hooks
            try JSONSerialization.data(withJSONObject: json).write(to: url)
        }
        _ = try await runtime.conmon.create(runtime.options(launch))
    }

    static func runs(_ world: RuntimeWorld, _ id: String) async throws {
        try await world.runtime().start(id: id, handler: handler)
        #expect(await world.tracker.wait(for: id, timeout: .seconds(20))?.exitCode == 0)
    }

    /// crisp's own delete as ConmonRuntime asks for it: with the state file, and none is runc's.
    static func fastDelete(_ id: String) async -> RuncStoppedDelete.Outcome {
        guard let state = RuncStateFile.read(root: handler.root, id: id) else { return .useRuntime }
        return await RuncStoppedDelete.delete(state, root: handler.root, id: id)
    }

    static func runcKnows(_ world: RuntimeWorld, _ id: String) async -> Bool {
        do throws(CrispError) {
            _ = try await world.runtime().state(id: id, handler: handler)
            return true
        } catch {
            #expect(error.code == .notFound, "\(error)")
            return false
        }
    }

    /// A container world with an id for the test's container; skipped where runc cannot run,
    /// and cleaned up (container deleted by runc, cgroups removed) whatever the body did.
    static func withWorld(_ body: (RuntimeWorld, String) async throws -> Void) async throws {
        if let why = RuntimeWorld.unavailable(runtime: handler.path) { print("skipped: \(why)"); return }
        let world = try RuntimeWorld()
        let id = randomID()
        do { try await body(world, id) } catch { Issue.record("\(error)") }
        await world.cleanup(handler: handler, ids: [id])
    }

    @Test func anExitedContainerIsDeletedWithoutRunc() async throws {
        try await Self.withWorld { world, id in
            try await Self.create(world, id: id, command: ["/bin/true"])
            try await Self.runs(world, id)
            let cgroups = try #require(RuncStateFile.read(root: Self.handler.root, id: id)?.cgroupPaths)
            #expect(!cgroups.isEmpty && cgroups.values.allSatisfy { FileManager.default.fileExists(atPath: $0) })
            #expect(await Self.fastDelete(id) == .deleted)
            #expect(!FileManager.default.fileExists(atPath: Self.handler.root + "/" + id), "runc's state directory stays")
            let left = cgroups.values.filter { FileManager.default.fileExists(atPath: $0) }
            #expect(left.isEmpty, "cgroups left: \(left)")
            #expect(await Self.runcKnows(world, id) == false)
            // A second delete, as a retried RemoveContainer makes, finds nothing and asks runc.
            #expect(await Self.fastDelete(id) == .useRuntime)
            try await world.runtime().delete(id: id, handler: Self.handler)
        }
    }

    @Test func aContainerNotStartedIsRuncsToDelete() async throws {
        try await Self.withWorld { world, id in
            try await Self.create(world, id: id, command: ["/bin/true"])
            // Its init waits on the exec fifo: a process runc's delete must kill.
            #expect(await Self.fastDelete(id) == .useRuntime)
            #expect(await Self.runcKnows(world, id))
            try await world.runtime().delete(id: id, handler: Self.handler)
            #expect(await Self.runcKnows(world, id) == false)
        }
    }

    /// Hooks as real runc records them (its state file names them `Hooks`): a poststart hook
    /// sends the start to runc, and a poststop hook the delete.
    @Test func hooksAreRuncsToRun() async throws {
        try await Self.withWorld { world, id in
            let marks = world.dir + "/hook-marks"
            let hook: (String) -> [String: Any] = { kind in
                ["path": "/bin/sh", "args": ["sh", "-c", "echo \(kind) >> \(marks)"]]
            }
            try await Self.create(world, id: id, command: ["/bin/true"],
                                  hooks: ["poststart": [hook("poststart")], "poststop": [hook("poststop")]])
            let config = try #require(RuncStateFile.read(root: Self.handler.root, id: id)?.config)
            #expect(config.hasHooks("poststart") && config.hasHooks("poststop") && !config.hasHooks("prestart"))
            #expect(try await RuncExecFifo.start(root: Self.handler.root, id: id) == .useRuntime)
            try await Self.runs(world, id)
            #expect(await Self.fastDelete(id) == .useRuntime)
            #expect(await Self.runcKnows(world, id))
            try await world.runtime().delete(id: id, handler: Self.handler)
            #expect(await Self.runcKnows(world, id) == false)
            let ran = (try? String(contentsOfFile: marks, encoding: .utf8)) ?? ""
            #expect(ran.split(separator: "\n") == ["poststart", "poststop"], "hooks run: \(ran)")
        }
    }

    /// A process left in the container's cgroup after its init exited (what a pod's shared PID
    /// namespace allows) is runc's to kill: the delete goes to it, and nothing stays.
    @Test func aProcessLeftInTheCgroupGoesToRunc() async throws {
        try await Self.withWorld { world, id in
            try await Self.create(world, id: id, command: ["/bin/true"])
            try await Self.runs(world, id)
            let cgroups = try #require(RuncStateFile.read(root: Self.handler.root, id: id)?.cgroupPaths)
            let memory = try #require(cgroups["memory"])
            let sleeper = try Spawn.start(Spawn.Options(path: "/bin/sleep", arguments: ["600"]))
            do {
                try "\(sleeper.pid)\n".write(toFile: memory + "/cgroup.procs", atomically: false, encoding: .utf8)
                #expect(await Self.fastDelete(id) == .useRuntime)
                #expect(await Self.runcKnows(world, id))
                try await world.runtime().delete(id: id, handler: Self.handler)
            } catch {
                sleeper.signal(SIGKILL)
                _ = await sleeper.wait()
                throw error
            }
            // A cgroup that stays still holds the process: it must not be waited on for 600 s.
            if FileManager.default.fileExists(atPath: memory) { sleeper.signal(SIGKILL) }
            let status = await sleeper.wait()
            #expect(status == 128 + SIGKILL, "the process left in the cgroup is killed")
            let left = cgroups.values.filter { FileManager.default.fileExists(atPath: $0) }
            #expect(left.isEmpty, "cgroups left: \(left)")
        }
    }
}
