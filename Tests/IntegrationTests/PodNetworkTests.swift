import IntegrationSupport
import CRIAPI
import Foundation
import GRPCCore
import Testing

/// Pods with their own network namespace, through crispd, crisp-pinns and Debian's CNI plugins
/// (bridge + host-local + portmap). The bridge, subnet and IPAM state belong to the test.
@Suite(.serialized) struct PodNetworkTests {
    /// A test's own CNI bridge, removed when the test ends (the bridge plugin leaves it).
    static func deleteBridge(_ name: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/sbin/ip")
        p.arguments = ["link", "del", name]
        try? p.run()
        p.waitUntilExit()
    }

    static func skipReason() -> String? {
        if let r = CRI.skipReason() { return r }
        for p in ["/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/portmap"]
        where !FileManager.default.isExecutableFile(atPath: p) {
            return "\(p) is not installed (apt containernetworking-plugins)"
        }
        return nil
    }

    /// crispd is killed between RunPodSandbox and StopPodSandbox and the network config is
    /// deleted meanwhile: the restarted crispd still runs DEL with the cached config and result.
    @Test func delAfterACrashAndAVanishedConfig() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let crispd = try CrispdProcess()
        let n = Int.random(in: 10...250)
        let bridge = "crir\(n)"
        let ipamDir = crispd.dir + "/ipam"
        let conflistPath = crispd.networkDir + "/10-it.conflist"
        try """
            {"cniVersion": "1.0.0", "name": "crisp-it", "plugins": [
              {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "dataDir": "\(ipamDir)", "ranges": [[{"subnet": "10.253.\(n).0/24"}]]}}]}
            """.write(toFile: conflistPath, atomically: true, encoding: .utf8)
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        let extra = ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", "/usr/lib/cni"]
        try await crispd.start(extra: extra)
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
        var restarted: CrispdProcess?
        defer {
            restarted?.signal(SIGTERM)
            world.cleanup()
            Self.deleteBridge(bridge)
        }
        let (id, ip): (String, String) = try await crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("crashnet", cgroupParent: cgroupParent, hostNetwork: false)
            let id = try await runtime.runPodSandbox(run).podSandboxID
            var statusReq = Runtime_V1_PodSandboxStatusRequest()
            statusReq.podSandboxID = id
            return (id, try await runtime.podSandboxStatus(statusReq).status.network.ip)
        }
        #expect(ip.hasPrefix("10.253.\(n)."))
        #expect(crispd.signal(SIGKILL) != 0)
        try FileManager.default.removeItem(atPath: conflistPath)
        let again = try CrispdProcess(dir: crispd.dir)
        restarted = again
        try await again.start(extra: extra)
        try await again.withClients { runtime, _ in
            var statusReq = Runtime_V1_PodSandboxStatusRequest()
            statusReq.podSandboxID = id
            #expect(try await runtime.podSandboxStatus(statusReq).status.network.ip == ip)
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = id
            _ = try await runtime.stopPodSandbox(stop)
            #expect(!FileManager.default.fileExists(atPath: "/var/run/netns/crisp-" + id))
            let allocated = (try? FileManager.default.contentsOfDirectory(atPath: ipamDir + "/crisp-it")) ?? []
            #expect(!allocated.contains(ip), "host-local still holds \(ip)")
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
        }
        world.assertNoLeaks()
    }

    @Test func podGetsAnIPAndLosesItOnStop() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let crispd = try CrispdProcess()
        let n = Int.random(in: 10...250)
        let bridge = "crit\(n)"
        let ipamDir = crispd.dir + "/ipam"
        let conflist = """
            {"cniVersion": "1.0.0", "name": "crisp-it", "plugins": [
              {"type": "bridge", "bridge": "\(bridge)", "isGateway": true, "ipMasq": false,
               "ipam": {"type": "host-local", "dataDir": "\(ipamDir)", "ranges": [[{"subnet": "10.252.\(n).0/24"}]]}},
              {"type": "portmap", "capabilities": {"portMappings": true}}]}
            """
        try conflist.write(toFile: crispd.networkDir + "/10-it.conflist", atomically: true, encoding: .utf8)
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root", "--plugin-dirs", "/usr/lib/cni"])
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
        defer {
            world.cleanup()
            PodNetworkTests.deleteBridge(bridge)
        }
        try await crispd.withClients { runtime, _ in
            let ready = try await runtime.status(Runtime_V1_StatusRequest()).status.conditions.first { $0.type == "NetworkReady" }
            #expect(ready?.status == true)

            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("net", cgroupParent: cgroupParent, hostNetwork: false)
            let id = try await runtime.runPodSandbox(run).podSandboxID
            var statusReq = Runtime_V1_PodSandboxStatusRequest()
            statusReq.podSandboxID = id
            let st = try await runtime.podSandboxStatus(statusReq).status
            #expect(st.network.ip.hasPrefix("10.252.\(n)."), "\(st.network.ip)")
            #expect(st.linux.namespaces.options.network == .pod)
            let netns = "/var/run/netns/crisp-" + id
            #expect(FileManager.default.fileExists(atPath: netns))
            let allocated = (try? FileManager.default.contentsOfDirectory(atPath: ipamDir + "/crisp-it")) ?? []
            #expect(allocated.contains(st.network.ip))
            let hosts = try String(contentsOfFile: crispd.runRoot + "/sandboxes/\(id)/hosts", encoding: .utf8)
            #expect(hosts.contains(st.network.ip))

            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = id
            _ = try await runtime.stopPodSandbox(stop)
            #expect(!FileManager.default.fileExists(atPath: netns))
            let after = (try? FileManager.default.contentsOfDirectory(atPath: ipamDir + "/crisp-it")) ?? []
            #expect(!after.contains(st.network.ip))
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
        }
        world.assertNoLeaks()
    }
}
