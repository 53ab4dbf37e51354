import CrispConfig
import CrispCore
import CrispNetwork
import CrispRuntime
import CrispStorage
import CrispTestSupport
import Foundation
import Testing
@testable import CrispService

/// Service operations against `FakeOCIRuntime`: rollback, concurrency, idempotence and restore,
/// without runc, conmon or mounts.
@Suite struct FakeRuntimeServiceTests {
    static let boom = CrispError(.internal, "fake runtime told to fail")

    @Test(arguments: [FakeOCIRuntime.Step.create, .start])
    func runPodSandboxLeavesNothingWhenTheInfraFails(_ step: FakeOCIRuntime.Step) async throws {
        try await ServiceWorld.with { world in
            world.runtime.fail(step, with: Self.boom)
            await #expect(throws: CrispError.self) { try await world.sandboxes.run(world.podRequest(sharedPID: true)) }
            #expect(await world.sandboxes.list(SandboxFilter()).isEmpty)
            #expect(world.recordDirectories().pods.isEmpty)
            #expect((try? FileManager.default.contentsOfDirectory(atPath: world.config.runRoot + "/sandboxes")) ?? [] == [])
            #expect(world.runtime.containers.isEmpty, "the runtime's container is deleted")
            if step == .start { #expect(world.runtime.calls(.delete).count == 1) }
            // The name is free again.
            world.runtime.clearFailure(step)
            let pod = try await world.sandboxes.run(world.podRequest(sharedPID: true))
            #expect(pod.infraPID > 0)
        }
    }

    @Test func createContainerLeavesNothingWhenTheRuntimeFails() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest())
            world.runtime.fail(.create, with: Self.boom)
            await #expect(throws: CrispError.self) { try await world.containers.create(world.containerRequest(pod: pod.id)) }
            #expect(await world.containers.list(ContainerFilter()).isEmpty)
            #expect(world.recordDirectories().containers.isEmpty)
            #expect(try await world.storage.containers().isEmpty, "the root filesystem is removed")
            world.runtime.clearFailure(.create)
            let c = try await world.containers.create(world.containerRequest(pod: pod.id))
            #expect(world.runtime.containers[c.id]?.status == .created)
        }
    }

    @Test func concurrentCreatesOfOneNameMakeOneContainer() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest())
            let gate = world.runtime.hold(.create)
            let request = world.containerRequest(pod: pod.id)
            async let first = outcome { () async throws(CrispError) in try await world.containers.create(request) }
            async let second = outcome { () async throws(CrispError) in try await world.containers.create(request) }
            // Let the first create into the runtime; the twin waits on the name, not on the runtime.
            while world.runtime.calls(.create).isEmpty { await Task.yield() }
            gate.open()
            let results = await [first, second]
            let made = results.compactMap { try? $0.get() }
            #expect(made.count == 1)
            let refused = results.compactMap { r -> CrispError? in if case .failure(let e) = r { return e }; return nil }
            #expect(refused.map(\.code) == [.alreadyExists])
            #expect(world.runtime.calls(.create).count == 1)
            #expect(await world.containers.list(ContainerFilter()).count == 1)
            #expect(try await world.storage.containers().count == 1)
        }
    }

    @Test func concurrentStartsStartOnceAndConcurrentStopsStopOnce() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest())
            let c = try await world.containers.create(world.containerRequest(pod: pod.id))
            async let a = outcome { () async throws(CrispError) in try await world.containers.start(c.id) }
            async let b = outcome { () async throws(CrispError) in try await world.containers.start(c.id) }
            let starts = await [a, b]
            #expect(starts.filter { (try? $0.get()) != nil }.count == 1)
            #expect(world.runtime.calls(.start) == [c.id])
            guard case .running = try await world.containers.status(c.id).lifecycle else {
                Issue.record("not running after start")
                return
            }
            async let x: Void = world.containers.stop(c.id, timeout: .seconds(5))
            async let y: Void = world.containers.stop(c.id, timeout: .seconds(5))
            _ = try await (x, y)
            #expect(world.runtime.calls(.stop) == [c.id], "the second stop finds the container exited")
            guard case .exited(let code, _, _, _) = try await world.containers.status(c.id).lifecycle else {
                Issue.record("not exited after stop")
                return
            }
            #expect(code == 143)
        }
    }

    @Test func stopAndRemoveAreIdempotent() async throws {
        try await ServiceWorld.with { world in
            try await world.containers.stop("0123456789abcdef", timeout: .zero)
            try await world.containers.remove("0123456789abcdef")
            try await world.containers.stopPod("0123456789abcdef")
            try await world.containers.removePod("0123456789abcdef")
            let pod = try await world.sandboxes.run(world.podRequest(sharedPID: true))
            let c = try await world.containers.create(world.containerRequest(pod: pod.id))
            try await world.containers.start(c.id)
            for _ in 0..<2 { try await world.containers.stop(c.id, timeout: .zero) }
            for _ in 0..<2 { try await world.containers.remove(c.id) }
            for _ in 0..<2 { try await world.containers.stopPod(pod.id) }
            for _ in 0..<2 { try await world.containers.removePod(pod.id) }
            #expect(await world.sandboxes.list(SandboxFilter()).isEmpty)
            #expect(world.recordDirectories() == ([], []))
            #expect(world.runtime.containers.isEmpty)
            #expect(try await world.storage.containers().isEmpty)
        }
    }

    /// After a reboot the runtime knows no container: StopContainer records the lost one as
    /// exited at once, without asking the runtime again.
    @Test func aContainerTheRuntimeLostIsRecordedExitedOnStop() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest())
            let c = try await world.containers.create(world.containerRequest(pod: pod.id))
            try await world.containers.start(c.id)
            world.runtime.forgetAll()
            try await world.containers.stop(c.id, timeout: .seconds(30))
            guard case .exited(let code, _, _, let reason) = try await world.containers.status(c.id).lifecycle else {
                Issue.record("not exited")
                return
            }
            #expect(code == 255 && reason == "ContainerStatusUnknown")
            #expect(world.runtime.calls(.state).isEmpty)
        }
    }

    @Test func restartRestoresPodsAndContainersFromTheirRecords() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest())
            let running = try await world.containers.create(world.containerRequest(pod: pod.id, name: "running"))
            try await world.containers.start(running.id)
            let ended = try await world.containers.create(world.containerRequest(pod: pod.id, name: "ended"))
            try await world.containers.start(ended.id)
            let created = try await world.containers.create(world.containerRequest(pod: pod.id, name: "created"))
            // Exits while crispd is down.
            await world.runtime.exit(ended.id, code: 7)

            let again = try await world.restarted()
            func check() async throws {
                #expect(await again.sandboxes.list(SandboxFilter()).map(\.id) == [pod.id])
                #expect(Set(await again.containers.list(ContainerFilter()).map(\.id)) == [running.id, ended.id, created.id])
                guard case .running = try await again.containers.status(running.id).lifecycle else { Issue.record("running lost"); return }
                guard case .exited(7, _, _, _) = try await again.containers.status(ended.id).lifecycle else { Issue.record("exit lost"); return }
                guard case .created = try await again.containers.status(created.id).lifecycle else { Issue.record("created lost"); return }
                // The name is still taken after the restart.
                await #expect(throws: CrispError.self) {
                    try await again.containers.create(again.containerRequest(pod: pod.id, name: "running"))
                }
            }
            do { try await check() } catch {
                await again.storage.close()
                throw error
            }
            await again.storage.close()
        }
    }
}

/// A service call's result or its typed error, for calls run side by side.
func outcome<T>(_ body: () async throws(CrispError) -> T) async -> Result<T, CrispError> {
    do { return .success(try await body()) } catch { return .failure(error) }
}

/// The pod's own /dev/shm and namespace pins, through `FakePodHost`.
@Suite struct FakePodHostServiceTests {
    @Test func aFailedPinUnmountsTheShmAndLeavesNothing() async throws {
        try await ServiceWorld.with { world in
            world.host.fail(.pin, with: CrispError(.internal, "fake pin failure"))
            await #expect(throws: CrispError.self) { try await world.sandboxes.run(world.podRequest(sharedPID: true)) }
            #expect(world.host.mountedShm.isEmpty)
            #expect(world.host.pins.isEmpty)
            #expect(world.recordDirectories().pods.isEmpty)
            #expect(world.runtime.calls(.create).isEmpty, "the infra is made after the pins")
        }
    }

    @Test func stopUnmountsTheShmAndUnpinsAndRemoveForgetsThePod() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest(sharedPID: true))
            #expect(world.host.mountedShm == [pod.shmPath])
            #expect(world.host.pins == ["crisp-" + pod.id: [.ipc]])
            try await world.containers.stopPod(pod.id)
            #expect(world.host.mountedShm.isEmpty)
            #expect(world.host.pins.isEmpty)
            #expect(try await world.sandboxes.status(pod.id).state == .notReady)
            try await world.containers.removePod(pod.id)
            #expect(world.recordDirectories().pods.isEmpty)
            #expect(world.runtime.containers.isEmpty)
        }
    }

    /// After a reboot the pins are plain files: a restored pod that was ready is not ready.
    @Test func aRestoredPodWhosePinsAreGoneIsNotReady() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest())
            try await world.host.unpinNamespaces(name: "crisp-" + pod.id, kinds: [.ipc])
            let again = try await world.restarted()
            let state = try? await again.sandboxes.status(pod.id).state
            await again.storage.close()
            #expect(state == .notReady)
        }
    }
}
