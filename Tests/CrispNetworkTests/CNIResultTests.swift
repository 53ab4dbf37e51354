import CrispCore
import Testing
@testable import CrispNetwork

@Suite struct CNIResultTests {
    static let results: [(version: String, text: String, ips: [String])] = [
        ("0.4.0", #"""
         {"cniVersion":"0.4.0","interfaces":[{"name":"cni0","mac":"aa"},{"name":"eth0","mac":"bb","sandbox":"/run/netns/x"}],
          "ips":[{"version":"4","interface":1,"address":"10.250.0.5/24","gateway":"10.250.0.1"},
                 {"version":"6","interface":1,"address":"fd00::5/64"}],
          "routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.0.0.10"],"search":["svc"]}}
         """#, ["10.250.0.5", "fd00::5"]),
        ("1.0.0", #"""
         {"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/run/netns/x"}],
          "ips":[{"address":"fd00::7/64","interface":0},{"address":"10.1.2.3/16","gateway":"10.1.0.1","interface":0}]}
         """#, ["10.1.2.3", "fd00::7"]),
        ("1.1.0", #"{"cniVersion":"1.1.0","ips":[{"address":"192.168.9.9/24"}],"dns":{}}"#, ["192.168.9.9"]),
        ("0.3.1", #"{"cniVersion":"0.3.1","interfaces":[{"name":"veth","mac":"cc"}],"ips":[{"version":"4","interface":0,"address":"10.9.0.2/24"}]}"#, []),
    ]

    @Test(arguments: results)
    func parsesResultVersions(version: String, text: String, ips: [String]) throws {
        let r = try CNIResult(document: try json(text), plugin: "p")
        #expect(r.cniVersion == version)
        // An address on a host-side interface (no sandbox) is not a pod IP.
        #expect(r.podIPs == ips)
    }

    @Test func rejectsResultsItCannotRead() throws {
        #expect(throws: CrispError.self) { try CNIResult(document: try json(#"{"cniVersion":"0.2.0","ip4":{}}"#), plugin: "old") }
        #expect(throws: CrispError.self) { try CNIResult(document: try json(#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1"}]}"#), plugin: "p") }
        #expect(throws: CrispError.self) { try CNIResult(document: try json("[]"), plugin: "p") }
    }

    @Test(arguments: [("10M", Int64(10_000_000)), ("1Gi", Int64(1 << 30)), ("1.5k", Int64(1500)), ("250k", Int64(250_000))])
    func bandwidthQuantities(text: String, bits: Int64) throws {
        #expect(try CNICapabilities.bandwidth(text, annotation: "a") == bits)
    }

    @Test(arguments: ["", "fast", "-1M", "10", "2P"])
    func badBandwidthQuantities(text: String) {
        #expect(throws: CrispError.self) { try CNICapabilities.bandwidth(text, annotation: "a") }
    }

    @Test func capabilityArguments() throws {
        let caps = try CNICapabilities.arguments(
            portMappings: [PortMapping(hostPort: 8080, containerPort: 80, protocol: .tcp, hostIP: "127.0.0.1"),
                           PortMapping(hostPort: 0, containerPort: 53, protocol: .udp)],
            annotations: ["kubernetes.io/ingress-bandwidth": "1M", "kubernetes.io/egress-bandwidth": "2M"])
        #expect(caps["portMappings"] == .array([.object(["hostPort": .int(8080), "containerPort": .int(80),
                                                         "protocol": .string("tcp"), "hostIP": .string("127.0.0.1")])]))
        #expect(caps["bandwidth"]?["ingressRate"] == .int(1_000_000))
        #expect(caps["bandwidth"]?["egressRate"] == .int(2_000_000))
        #expect(caps["io.kubernetes.cri.pod-annotations"]?["kubernetes.io/egress-bandwidth"] == .string("2M"))
        #expect(throws: CrispError.self) {
            _ = try CNICapabilities.arguments(portMappings: [PortMapping(hostPort: 70000, containerPort: 1)], annotations: [:])
        }
    }

    @Test func resultCacheRoundTripsAndRemoves() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let cache = CNIResultCache(directory: dir.path + "/results")
        let net = try CNINetworkConfigList(document: try json(#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}"#), source: "/x.conflist")
        let p = pod()
        let rt = CNIRuntimeConf(containerID: p.id, netnsPath: "/run/netns/x", args: p.cniArgs, capabilityArgs: ["a": .int(1)])
        #expect(try cache.load(podID: p.id) == nil)
        let entry = CNICacheEntry(network: net, runtime: rt, pod: p, result: try json(#"{"cniVersion":"1.0.0","ips":[]}"#))
        try cache.store(entry, podID: p.id)
        let back = try #require(try cache.load(podID: p.id))
        #expect(back == entry)
        #expect(try back.network().plugins.map(\.type) == ["bridge"])
        #expect(cache.podIDs() == [p.id])
        try dir.write("results/bad.json", "{")
        #expect(throws: CrispError.self) { try cache.load(podID: "bad") }
        try cache.remove(podID: p.id)
        try cache.remove(podID: p.id)
        #expect(try cache.load(podID: p.id) == nil)
        #expect(throws: CrispError.self) { try cache.load(podID: "../etc") }
    }
}

@Suite struct PodHostsFileTests {
    @Test func hostsFileNamesEveryPodIP() {
        let text = PodHostsFile.contents(hostname: "web-0", podIPs: ["10.250.0.5", "fd00::5"],
                                         extraEntries: [("10.0.0.1", ["db", "db.local"])])
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("127.0.0.1\tlocalhost"))
        #expect(lines.contains("10.250.0.5\tweb-0"))
        #expect(lines.contains("fd00::5\tweb-0"))
        #expect(lines.last == "10.0.0.1\tdb db.local")
        #expect(!PodHostsFile.contents(hostname: "", podIPs: ["10.0.0.9"]).contains("10.0.0.9"))
    }
}
