import IntegrationSupport
import CRIAPI
import CrispOS
import CrispRuntime
import CrispTestSupport
import Foundation
import GRPCCore
import Testing

/// CheckpointContainer and restore through crispd, runc and CRIU. Where CRIU cannot run (this
/// project's machines: Debian 12's CRIU 3.17 stops at the vDSO layout of kernels from 6.13 on),
/// the errors are checked and the round trip is skipped with `criu check`'s own words.
@Suite(.serialized) struct CheckpointTests {
    typealias Lifecycle = CRI

    static func checkpoint(_ runtime: Lifecycle.Client, _ id: String, to location: String) async throws {
        var r = Runtime_V1_CheckpointContainerRequest()
        r.containerID = id
        r.location = location
        r.timeout = 120
        _ = try await runtime.checkpointContainer(r)
    }

    @Test func disabledOrUnusableCRIUIsAClearError() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        for enabled in [false, true] {
            let world = try await Lifecycle.world(extra: ["--enable-criu-support", "\(enabled)"])
            defer { world.cleanup() }
            let problem = enabled ? await Criu.problem() : nil
            if enabled && problem == nil { continue }  // the round trip below covers a working CRIU
            try await world.crispd.withClients { runtime, _ in
                let pod = try await Lifecycle.runPod(runtime, "ckpt-\(enabled)", world: world)
                let id = try await Lifecycle.startContainer(runtime, pod: pod, "c", ["/bin/sleep", "600"])
                let location = world.crispd.dir + "/c.tar"
                do {
                    try await Self.checkpoint(runtime, id, to: location)
                    Issue.record("CheckpointContainer succeeded with enable_criu_support \(enabled) and CRIU: \(problem ?? "working")")
                } catch let e as RPCError {
                    #expect(e.code == .failedPrecondition, "\(e)")
                    #expect(e.message.contains(enabled ? "CRIU cannot checkpoint" : "enable_criu_support"), "\(e.message)")
                }
                #expect(!FileManager.default.fileExists(atPath: location), "no archive is left by a failed checkpoint")
                #expect(try await Lifecycle.status(runtime, id).state == .containerRunning, "the container keeps running")
                // A restore (an archive path as the image) asks the same questions first.
                var create = Runtime_V1_CreateContainerRequest()
                create.podSandboxID = pod.id
                create.sandboxConfig = pod.config
                create.config = CRI.containerConfig("restored", [], logPath: "restored.log")
                create.config.image.image = location
                do {
                    _ = try await runtime.createContainer(create)
                    Issue.record("a restore was accepted with enable_criu_support \(enabled)")
                } catch let e as RPCError {
                    #expect(e.code == .failedPrecondition, "\(e)")
                }
                try await Lifecycle.removePod(runtime, pod.id)
            }
            world.assertNoLeaks()
            if let problem { print("CRIU on this host: \(problem)") }
        }
    }

    /// A counter checkpointed in one pod continues in another from where it was, with the file
    /// it wrote; the archive is an ordinary tar in CRI-O's layout.
    @Test func aCounterContinuesInANewPod() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        if let problem = await Criu.problem() { print("skipped: \(problem)"); return }
        let world = try await Lifecycle.world(extra: ["--enable-criu-support", "true"])
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let first = try await Lifecycle.runPod(runtime, "counted", world: world)
            let counter = try await Lifecycle.startContainer(runtime, pod: first, "counter", [
                "/bin/sh", "-c", "echo kept > /tmp/written; i=0; while true; do echo $i > /tmp/count; i=$((i+1)); sleep 0.1; done",
            ])
            var before = 0
            while before < 10 { before = Int(try await Lifecycle.exec(runtime, counter, "cat /tmp/count").out) ?? 0 }
            let location = world.crispd.dir + "/counter.tar"
            try await Self.checkpoint(runtime, counter, to: location)
            let listed = try runCommand(["/usr/bin/tar", "-tf", location]).output
            for member in ["config.dump", "spec.dump", "checkpoint/inventory.img", "rootfs-diff.tar"] {
                #expect(listed.contains(member), "\(member) missing from the archive: \(listed)")
            }
            #expect(try await Lifecycle.status(runtime, counter).state == .containerRunning)
            let atCheckpoint = Int(try await Lifecycle.exec(runtime, counter, "cat /tmp/count").out) ?? 0
            try await Lifecycle.removePod(runtime, first.id)

            let second = try await Lifecycle.runPod(runtime, "restored", world: world)
            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = second.id
            create.sandboxConfig = second.config
            create.config = CRI.containerConfig("counter", [], logPath: "counter.log")
            create.config.image.image = location
            let restored = try await runtime.createContainer(create).containerID
            var start = Runtime_V1_StartContainerRequest()
            start.containerID = restored
            _ = try await runtime.startContainer(start)
            #expect(try await Lifecycle.exec(runtime, restored, "cat /tmp/written").out == "kept")
            let after = Int(try await Lifecycle.exec(runtime, restored, "cat /tmp/count").out) ?? 0
            #expect(after >= before && after < atCheckpoint + 100, "the count went on from \(before) (checkpoint at \(atCheckpoint)): \(after)")
            try await Lifecycle.removePod(runtime, second.id)
        }
        world.assertNoLeaks()
    }
}
