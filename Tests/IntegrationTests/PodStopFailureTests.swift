import IntegrationSupport
import CRIAPI
import Foundation
import GRPCCore
import Testing

/// StopPodSandbox may treat only "this pod does not exist" as success. A teardown that failed
/// with a NotFound of its own (here: a CNI plugin gone from the plugin directory) must reach the
/// kubelet as a failure, or it takes the pod for stopped and the netns and the IP leak.
@Suite(.serialized) struct PodStopFailureTests {
    @Test func aTeardownThatFailsIsReportedAndCanBeRetried() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        let crispd = try CrispdProcess()
        let n = Int.random(in: 10...250)
        let bridge = "crsf\(n)"
        let ipamDir = crispd.dir + "/ipam"
        let plugins = crispd.dir + "/plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        for p in ["bridge", "host-local", "portmap"] {
            try FileManager.default.createSymbolicLink(atPath: plugins + "/" + p, withDestinationPath: "/usr/lib/cni/" + p)
        }
        try """
            {"cniVersion": "1.0.0", "name": "crisp-it", "plugins": [
              {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "dataDir": "\(ipamDir)", "ranges": [[{"subnet": "10.249.\(n).0/24"}]]}},
              {"type": "portmap", "capabilities": {"portMappings": true}}]}
            """.write(toFile: crispd.networkDir + "/10-it.conflist", atomically: true, encoding: .utf8)
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", plugins])
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
        defer {
            world.cleanup()
            PodNetworkTests.deleteBridge(bridge)
        }
        try await crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("stopfail", cgroupParent: cgroupParent, hostNetwork: false)
            let id = try await runtime.runPodSandbox(run).podSandboxID
            var statusReq = Runtime_V1_PodSandboxStatusRequest()
            statusReq.podSandboxID = id
            let ip = try await runtime.podSandboxStatus(statusReq).status.network.ip

            try FileManager.default.removeItem(atPath: plugins + "/portmap")
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = id
            do {
                _ = try await runtime.stopPodSandbox(stop)
                Issue.record("StopPodSandbox succeeded although CNI DEL could not run")
            } catch let e as RPCError {
                #expect(e.code != .notFound, "a NotFound would tell the kubelet the pod is gone: \(e.message)")
                #expect(e.message.contains("portmap"), "\(e.message)")
            }
            #expect(try await runtime.podSandboxStatus(statusReq).status.id == id, "the pod is still on record")
            #expect(FileManager.default.fileExists(atPath: "/var/run/netns/crisp-" + id), "the netns is kept for the retry")

            // Once the plugin is back, the kubelet's retry stops the pod and frees the IP.
            try FileManager.default.createSymbolicLink(atPath: plugins + "/portmap", withDestinationPath: "/usr/lib/cni/portmap")
            _ = try await runtime.stopPodSandbox(stop)
            #expect(!FileManager.default.fileExists(atPath: "/var/run/netns/crisp-" + id))
            let allocated = (try? FileManager.default.contentsOfDirectory(atPath: ipamDir + "/crisp-it")) ?? []
            #expect(!allocated.contains(ip))
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
        }
        world.assertNoLeaks()
    }
}
