import CrispCore
import CrispNetwork
import CrispTestSupport
import Foundation
import Testing
@testable import CrispService

/// Pods on a network, through `PodNetworkManager` on the fake CNI executor and namespaces.
@Suite struct FakeNetworkServiceTests {
    @Test func aPodOnTheNetworkGetsAnIPAndStopGivesItBack() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest(network: true))
            #expect(pod.ips == ["10.88.0.2"])
            #expect(world.netns.live == ["crisp-" + pod.id])
            #expect(world.host.pins["crisp-" + pod.id] == [.ipc, .uts])
            try await world.containers.stopPod(pod.id)
            #expect(world.netns.live.isEmpty)
            #expect(world.cni.calls.map(\.command) == [.add, .del])
            try await world.containers.removePod(pod.id)
        }
    }

    @Test func aFailedAddLeavesNoNamespaceNoPinsAndNoRecord() async throws {
        try await ServiceWorld.with { world in
            world.cni.setPlugin("fakebridge", FakeCNIExecutor.failing(.add, code: 11, msg: "no addresses left"))
            await #expect { try await world.sandboxes.run(world.podRequest(network: true)) } throws: { e in
                (e as? CrispError)?.message.contains("no addresses left") == true
            }
            #expect(world.netns.live.isEmpty)
            #expect(world.host.pins.isEmpty && world.host.mountedShm.isEmpty)
            #expect(world.recordDirectories().pods.isEmpty)
        }
    }

    /// The bug: StopPodSandbox took any NotFound for "already gone", so a missing CNI plugin
    /// reported success and leaked the namespace and the IP.
    @Test func aStopWhoseTeardownFailsSaysSoAndTheRetryFinishesIt() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest(network: true))
            world.cni.removePlugin("fakebridge")
            await #expect { try await world.containers.stopPod(pod.id) } throws: { e in
                guard let e = e as? CrispError else { return false }
                return e.code != .notFound && e.message.contains("fakebridge")
            }
            #expect(world.netns.live == ["crisp-" + pod.id], "the namespace stays for the retry")
            #expect(try await world.sandboxes.status(pod.id).netnsPath != nil)
            world.cni.setPlugin("fakebridge", ServiceWorld.bridge())
            try await world.containers.stopPod(pod.id)
            #expect(world.netns.live.isEmpty)
            try await world.containers.removePod(pod.id)
            #expect(world.recordDirectories().pods.isEmpty)
        }
    }

    /// ADD runs beside the infra container: the infra is created in the pod's netns and started
    /// while ADD is still held, and the pod gets its IP once ADD lets go.
    @Test(.timeLimit(.minutes(1))) func theInfraContainerStartsWhileADDRuns() async throws {
        try await ServiceWorld.with { world in
            let add = world.cni.hold(.add)
            let start = world.runtime.hold(.start)
            let run = Task { try await world.sandboxes.run(world.podRequest(sharedPID: true, network: true)) }
            await add.reached()
            await start.reached()
            #expect(world.runtime.calls(.create).count == 1, "the infra was created before ADD finished")
            start.open()
            add.open()
            let pod = try await run.value
            #expect(pod.ips == ["10.88.0.2"])
            #expect(world.runtime.calls(.start) == [pod.id])
            try await world.containers.stopPod(pod.id)
            try await world.containers.removePod(pod.id)
        }
    }

    @Test func aFailedADDAfterTheInfraStartedRemovesTheInfraToo() async throws {
        try await ServiceWorld.with { world in
            world.cni.setPlugin("fakebridge", FakeCNIExecutor.failing(.add, code: 11, msg: "no addresses left"))
            let start = world.runtime.hold(.start)
            let add = world.cni.hold(.add)
            let run = Task { try await world.sandboxes.run(world.podRequest(sharedPID: true, network: true)) }
            await start.reached()
            start.open()
            add.open()
            await #expect { try await run.value } throws: { e in (e as? CrispError)?.message.contains("no addresses left") == true }
            #expect(world.runtime.calls(.delete).count == 1, "the infra is deleted")
            #expect(world.netns.live.isEmpty)
            #expect(world.host.pins.isEmpty && world.host.mountedShm.isEmpty)
            #expect(world.recordDirectories().pods.isEmpty)
        }
    }

    /// An infra that fails while ADD is in flight: the rollback waits for ADD, then DELs.
    @Test func aFailedInfraWaitsForADDAndDeletesTheAttachment() async throws {
        try await ServiceWorld.with { world in
            world.runtime.fail(.create, with: .internal("runc create failed"))
            let add = world.cni.hold(.add)
            let run = Task { try await world.sandboxes.run(world.podRequest(sharedPID: true, network: true)) }
            await add.reached()
            add.open()
            await #expect { try await run.value } throws: { e in (e as? CrispError)?.message.contains("runc create failed") == true }
            #expect(world.cni.calls.map(\.command).filter { $0 != .check } == [.add, .del])
            #expect(world.netns.live.isEmpty)
            #expect(world.host.pins.isEmpty && world.host.mountedShm.isEmpty)
            #expect(world.recordDirectories().pods.isEmpty)
        }
    }

    /// StopPodSandbox kills the infra and deletes it from the runtime (beside CNI DEL), so that
    /// RemovePodSandbox has no runtime call left; a second stop asks the runtime nothing.
    @Test func stopDeletesTheInfraAndRemoveAsksTheRuntimeNothing() async throws {
        try await ServiceWorld.with { world in
            let pod = try await world.sandboxes.run(world.podRequest(sharedPID: true, network: true))
            try await world.containers.stopPod(pod.id)
            #expect(world.runtime.calls.filter { $0.id == pod.id }.map(\.step) == [.create, .start, .stop, .delete])
            #expect(world.runtime.containers[pod.id] == nil)
            #expect(try await world.sandboxes.status(pod.id).infraDeleted == true)
            try await world.containers.stopPod(pod.id)
            try await world.containers.removePod(pod.id)
            #expect(world.runtime.calls.filter { $0.id == pod.id }.map(\.step) == [.create, .start, .stop, .delete])
            #expect(world.netns.live.isEmpty && world.recordDirectories().pods.isEmpty)
        }
    }
}
