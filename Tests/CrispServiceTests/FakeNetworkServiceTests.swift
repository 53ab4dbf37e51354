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
}
