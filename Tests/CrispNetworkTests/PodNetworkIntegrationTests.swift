import CrispCore
import CrispNetwork
import Foundation
import Glibc
import Testing

/// Real CNI plugins (Debian's containernetworking-plugins), real netns through crisp-pinns.
/// Root only; each test has its own bridge crtest<N> and subnet 10.250.<N>.0/24.
@Suite(.enabled(if: RootNetworking.available, "needs root, /usr/lib/cni plugins, busybox, ip and crisp-pinns"))
struct PodNetworkIntegrationTests {
    @Test func twoPodsGetDistinctIPsAndOneReachesHTTPInTheOther() async throws {
        try await withFixture(201) { f in
            try f.writeConflist()
            let m = f.manager()
            let a = pod(name: "server"), b = pod(name: "client")
            f.track(pod: a.id); f.track(pod: b.id)
            let na = try await m.setUp(PodNetworkRequest(pod: a))
            let nb = try await m.setUp(PodNetworkRequest(pod: b))
            let ipA = try #require(na.ipv4), ipB = try #require(nb.ipv4)
            #expect(ipA != ipB)
            #expect(ipA.hasPrefix("10.250.201.") && ipB.hasPrefix("10.250.201."))
            #expect(na.netnsPath == "/var/run/netns/crisp-\(a.id)")
            // Loopback is up in the pod.
            #expect(try inPod(a.id, ["/usr/sbin/ip", "-o", "link", "show", "lo"]).output.contains("UP"))

            try await startHTTPServer(f, podID: a.id, port: 8080, body: "hello from \(a.id.prefix(8))")
            let r = try inPod(b.id, ["/usr/bin/timeout", "10", "/bin/busybox", "wget", "-q", "-O", "-", "http://\(ipA):8080/index.html"])
            #expect(r.status == 0)
            #expect(r.output.contains("hello from \(a.id.prefix(8))"))

            // Port forward support: a descriptor connected to localhost:8080 inside pod A.
            let fd = try await PortDialer(pinnsPath: RootNetworking.pinnsPath!).dial(netnsPath: na.netnsPath, port: 8080)
            #expect(httpGet(fd: fd, path: "/index.html").contains("hello from \(a.id.prefix(8))"))
            await #expect {
                _ = try await PortDialer(pinnsPath: RootNetworking.pinnsPath!).dial(netnsPath: na.netnsPath, port: 8081)
            } throws: { ($0 as! CrispError).code == .unavailable }
        }
    }

    @Test func hostPortOn127001ReachesThePod() async throws {
        try await withFixture(202) { f in
            try f.writeConflist(extraPlugins: [#"{"type":"portmap","capabilities":{"portMappings":true},"snat":true}"#])
            let m = f.manager()
            let p = pod(name: "hostport")
            f.track(pod: p.id)
            let hostPort = 30202
            _ = try await m.setUp(PodNetworkRequest(pod: p, portMappings: [
                PortMapping(hostPort: hostPort, containerPort: 8080, protocol: .tcp, hostIP: "127.0.0.1")]))
            try await startHTTPServer(f, podID: p.id, port: 8080, body: "via hostport")
            let r = try run("/usr/bin/timeout", ["10", "/bin/busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:\(hostPort)/index.html"])
            #expect(r.status == 0, "\(r.output)")
            #expect(r.output.contains("via hostport"))
            try await m.tearDown(podID: p.id)
            // portmap's DEL removed this pod's DNAT chain.
            let rules = try run("/usr/sbin/iptables-save", ["-t", "nat"]).output
            #expect(!rules.contains("\(hostPort)"))
        }
    }

    @Test func tearDownFreesTheIPAndRemovesTheNetns() async throws {
        try await withFixture(203) { f in
            try f.writeConflist()
            let m = f.manager()
            let p = pod()
            f.track(pod: p.id)
            let att = try await m.setUp(PodNetworkRequest(pod: p))
            #expect(f.allocatedIPs() == [try #require(att.ipv4)])
            #expect(f.netnsExists(p.id))
            try await m.check(podID: p.id)
            try await m.tearDown(podID: p.id)
            #expect(f.allocatedIPs().isEmpty)
            #expect(!f.netnsExists(p.id))
            #expect(try m.attachment(podID: p.id) == nil)
            try await m.tearDown(podID: p.id)  // idempotent
        }
    }

    @Test func delAfterRestartUsesCachedConfigWhenTheFileIsGone() async throws {
        try await withFixture(204) { f in
            try f.writeConflist()
            let first = f.manager()
            let p = pod()
            f.track(pod: p.id)
            let att = try await first.setUp(PodNetworkRequest(pod: p))
            let hostVeth = try #require(att.result.interfaces.first { $0.sandbox.isEmpty && $0.name != f.bridge }).name
            first.stop()
            try FileManager.default.removeItem(atPath: f.networkDir + "/10-crtest.conflist")

            let second = f.manager()  // a "restarted" daemon: nothing in memory
            #expect(!second.readiness.ready)
            #expect(try second.attachment(podID: p.id)?.ipv4 == att.ipv4)
            try await second.tearDown(podID: p.id)
            #expect(f.allocatedIPs().isEmpty)
            #expect(!f.netnsExists(p.id))
            #expect(try run("/usr/sbin/ip", ["link", "show", hostVeth]).status != 0)
        }
    }

    @Test func delWithoutTheNetnsStillReleasesTheIP() async throws {
        try await withFixture(211) { f in
            try f.writeConflist()
            let m = f.manager()
            let p = pod()
            f.track(pod: p.id)
            _ = try await m.setUp(PodNetworkRequest(pod: p))
            // As after a reboot: the pin (on tmpfs) is gone, the cache (on disk) is not.
            try await f.namespaces.remove(name: m.netnsName(podID: p.id))
            #expect(f.allocatedIPs().count == 1)
            try await m.tearDown(podID: p.id)
            #expect(f.allocatedIPs().isEmpty)
            #expect(try m.attachment(podID: p.id) == nil)
        }
    }

    @Test func missingPluginFailsClearlyAndLeavesNothing() async throws {
        try await withFixture(205) { f in
            try f.writeConflist(extraPlugins: [#"{"type":"crisp-no-such-plugin"}"#])
            let m = f.manager()
            let p = pod()
            f.track(pod: p.id)
            await #expect {
                _ = try await m.setUp(PodNetworkRequest(pod: p))
            } throws: { e in
                let e = e as! CrispError
                return e.code == .notFound && e.message.contains("\"crisp-no-such-plugin\"") && e.message.contains("/usr/lib/cni")
            }
            #expect(!f.netnsExists(p.id))
            #expect(f.allocatedIPs().isEmpty)
            #expect(try m.attachment(podID: p.id) == nil)
        }
    }

    @Test func pluginFailingMidChainTriggersDelOfTheEarlierOnes() async throws {
        try await withFixture(206) { f in
            let log = f.dir.path + "/fail.log"
            try f.dir.write("bin/crtest-fail", """
                #!/bin/sh
                cat >/dev/null
                echo "$CNI_COMMAND" >> \(log)
                if [ "$CNI_COMMAND" = ADD ]; then
                  echo '{"cniVersion":"1.0.0","code":101,"msg":"crtest-fail refuses ADD"}'; exit 1
                fi
                exit 0
                """)
            chmod(f.dir.path + "/bin/crtest-fail", 0o755)
            try f.writeConflist(extraPlugins: [#"{"type":"crtest-fail"}"#, #"{"type":"loopback"}"#])
            let m = f.manager(pluginDirs: [f.dir.path + "/bin", RootNetworking.pluginDir])
            let p = pod()
            f.track(pod: p.id)
            await #expect {
                _ = try await m.setUp(PodNetworkRequest(pod: p))
            } throws: { e in
                let e = e as! CrispError
                return (e.cause as? CNIPluginError)?.code == 101 && e.message.contains("crtest-fail refuses ADD")
            }
            // bridge's ADD allocated an IP and made a veth; the rollback DEL released them.
            #expect(f.allocatedIPs().isEmpty)
            #expect(!f.netnsExists(p.id))
            #expect(try String(contentsOfFile: log, encoding: .utf8) == "ADD\nDEL\n")
            let links = try run("/usr/sbin/ip", ["-o", "link", "show", "master", f.bridge]).output
            #expect(!links.contains("veth"), "\(links)")
        }
    }

    @Test func twentyPodsInParallelGetUniqueIPs() async throws {
        try await withFixture(207) { f in
            try f.writeConflist()
            let m = f.manager()
            let pods = (0..<20).map { pod(name: "p\($0)") }
            for p in pods { f.track(pod: p.id) }
            let ips = try await withThrowingTaskGroup(of: String.self) { g in
                for p in pods { g.addTask { try #require(try await m.setUp(PodNetworkRequest(pod: p)).ipv4) } }
                var all: [String] = []
                for try await ip in g { all.append(ip) }
                return all
            }
            #expect(ips.count == 20)
            #expect(Set(ips).count == 20)
            #expect(Set(f.allocatedIPs()) == Set(ips))
            try await withThrowingTaskGroup(of: Void.self) { g in
                for p in pods { g.addTask { try await m.tearDown(podID: p.id) } }
                try await g.waitForAll()
            }
            #expect(f.allocatedIPs().isEmpty)
            #expect(pods.allSatisfy { !f.netnsExists($0.id) })
        }
    }

    @Test func bandwidthAnnotationsProduceATbfQdisc() async throws {
        try await withFixture(208) { f in
            try f.writeConflist(extraPlugins: [#"{"type":"bandwidth","capabilities":{"bandwidth":true}}"#])
            let m = f.manager()
            let p = pod()
            f.track(pod: p.id)
            let att = try await m.setUp(PodNetworkRequest(pod: p, annotations: [
                "kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "20M"]))
            let hostVeth = try #require(att.result.interfaces.first { $0.sandbox.isEmpty && $0.name.hasPrefix("veth") }).name
            let q = try run("/usr/sbin/tc", ["qdisc", "show", "dev", hostVeth]).output
            #expect(q.contains("tbf"), "\(q)")
            #expect(q.contains("rate 10Mbit"), "\(q)")
            try await m.tearDown(podID: p.id)
            #expect(try run("/usr/sbin/ip", ["link", "show", hostVeth]).status != 0)
        }
    }

    @Test func dualStackPodGetsIPv4AndIPv6() async throws {
        try await withFixture(210) { f in
            try f.writeConflist(ipv6: true)
            let m = f.manager()
            let p = pod()
            f.track(pod: p.id)
            let att = try await m.setUp(PodNetworkRequest(pod: p))
            #expect(att.ips.count == 2)
            #expect(att.ipv4?.hasPrefix("10.250.210.") == true)
            #expect(att.ipv6?.hasPrefix("fd00:250:210::") == true)
            #expect(att.ips.first == att.ipv4)
            let addrs = try inPod(p.id, ["/usr/sbin/ip", "-o", "addr", "show", "dev", "eth0"]).output
            #expect(addrs.contains(try #require(att.ipv6)))
            try await m.tearDown(podID: p.id)
            #expect(f.allocatedIPs().isEmpty)
        }
    }

    @Test func networkReadyFollowsTheDirectory() async throws {
        try await withFixture(209) { f in
            let m = f.manager()
            try m.start()
            let updates = m.readinessUpdates()
            #expect(await waitForReadiness(updates, ready: false))
            #expect(m.readiness.reason == "NetworkPluginNotReady" && m.readiness.message.contains(f.networkDir))
            try f.writeConflist()
            #expect(await waitForReadiness(updates, ready: true))
            // A pod can be set up as soon as the config is seen.
            let p = pod()
            f.track(pod: p.id)
            _ = try await m.setUp(PodNetworkRequest(pod: p))
            try FileManager.default.removeItem(atPath: f.networkDir + "/10-crtest.conflist")
            #expect(await waitForReadiness(updates, ready: false))
            try await m.tearDown(podID: p.id)
            #expect(f.allocatedIPs().isEmpty)
        }
    }
}

@Suite(.enabled(if: RootNetworking.available, "needs root and crisp-pinns"))
struct PinnsTests {
    @Test func createsPinsWithHostnameAndRemovesThem() async throws {
        let ns = PinnsNamespaces(pinnsPath: RootNetworking.pinnsPath!)
        let name = "crtest-pinns-\(UUID().uuidString.prefix(8))"
        let pins = try await ns.create(name: name, kinds: [.net, .uts, .ipc], hostname: "crisp-host")
        do {
            #expect(pins[.net] == "/var/run/netns/\(name)")
            #expect(pins[.uts] == "/var/run/utsns/\(name)")
            #expect(try run("/usr/bin/nsenter", ["--uts=/var/run/utsns/\(name)", "hostname"]).output == "crisp-host\n")
            #expect(try run("/usr/sbin/ip", ["netns", "list"]).output.contains(name))
            await #expect { _ = try await ns.create(name: name, kinds: [.net], hostname: nil) } throws: {
                ($0 as! CrispError).code == .alreadyExists
            }
        }
        try await ns.remove(name: name, kinds: [.net, .uts, .ipc])
        #expect(access("/var/run/netns/\(name)", F_OK) != 0)
        #expect(access("/var/run/utsns/\(name)", F_OK) != 0)
        try await ns.remove(name: name, kinds: [.net, .uts, .ipc])  // idempotent
        let bad = try run(RootNetworking.pinnsPath!, ["create", "--dir", "/var/run", "--name", "../x", "--net"])
        #expect(bad.status == 2 && bad.output.contains("invalid --name"))
    }
}
