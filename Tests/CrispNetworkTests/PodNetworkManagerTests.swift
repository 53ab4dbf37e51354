import CrispCore
import Foundation
import CrispTestSupport
import Testing
@testable import CrispNetwork

/// PodNetworkManager with the fake executor and fake namespaces: no root needed.
@Suite struct PodNetworkManagerTests {
    static let list = #"{"cniVersion":"1.0.0","name":"fakenet","plugins":[{"type":"a"},{"type":"b"},{"type":"c"}]}"#
    static let result = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.3.0.2/24","interface":0},{"address":"fd01::2/64","interface":0}]}"#

    struct Env {
        let dir: TempDir
        let fake = FakeCNIExecutor()
        let ns = FakeNetworkNamespaces()
        func manager() -> PodNetworkManager {
            PodNetworkManager(options: PodNetworkOptions(networkDir: dir.path + "/net.d", pluginDirs: ["/plugins"],
                                                         cacheDir: dir.path + "/cache"),
                              executor: fake, namespaces: ns, logger: testLogger)
        }
    }

    func env() throws -> Env {
        let e = Env(dir: try TempDir())
        try e.dir.write("net.d/10-fake.conflist", Self.list)
        e.fake.setPlugin("a", FakeCNIExecutor.succeeding(result: try json(Self.result)))
        e.fake.setPlugin("b", FakeCNIExecutor.succeeding())
        e.fake.setPlugin("c", FakeCNIExecutor.succeeding())
        return e
    }

    @Test func setUpReturnsIPsAndTearDownDeletesWithCachedConfig() async throws {
        let e = try env()
        defer { e.dir.cleanup() }
        let m = e.manager()
        let p = pod()
        let a = try await m.setUp(PodNetworkRequest(pod: p))
        #expect(a.ips == ["10.3.0.2", "fd01::2"])
        #expect(a.ipv4 == "10.3.0.2" && a.ipv6 == "fd01::2")
        #expect(a.netnsPath == "/fake/netns/crisp-\(p.id)")
        #expect(e.ns.live == ["crisp-\(p.id)"])
        // Idempotent: a second setUp returns the same attachment without running plugins.
        let calls = e.fake.calls.count
        #expect(try await m.setUp(PodNetworkRequest(pod: p)) == a)
        #expect(e.fake.calls.count == calls)
        #expect(try m.attachment(podID: p.id) == a)

        // "Restart": a new manager, and the config file is gone.
        try FileManager.default.removeItem(atPath: e.dir.path + "/net.d/10-fake.conflist")
        let m2 = e.manager()
        #expect(!m2.readiness.ready)
        try await m2.tearDown(podID: p.id)
        let dels = e.fake.calls.filter { $0.command == .del }
        #expect(dels.map(\.pluginType) == ["c", "b", "a"])
        #expect(try JSONValue.parse(dels[0].stdin, what: "")["prevResult"] == (try json(Self.result)))
        #expect(e.ns.live.isEmpty)
        #expect(try m2.attachment(podID: p.id) == nil)
        try await m2.tearDown(podID: p.id)  // idempotent
    }

    @Test func failureMidChainDeletesEarlierPluginsAndLeavesNothing() async throws {
        let e = try env()
        defer { e.dir.cleanup() }
        e.fake.setPlugin("b", FakeCNIExecutor.failing(.add, code: 5, msg: "b broke"))
        let m = e.manager()
        let p = pod()
        await #expect {
            _ = try await m.setUp(PodNetworkRequest(pod: p))
        } throws: { ($0 as! CrispError).message.contains("b broke") }
        let cmds = e.fake.calls.map { "\($0.command.rawValue) \($0.pluginType)" }
        #expect(cmds == ["ADD a", "ADD b", "DEL c", "DEL b", "DEL a"])
        #expect(e.ns.live.isEmpty)
        #expect(try m.attachment(podID: p.id) == nil)
        #expect(m.cache.podIDs().isEmpty)
    }

    @Test func missingPluginCreatesNoNetnsAndRunsNothing() async throws {
        let e = try env()
        defer { e.dir.cleanup() }
        e.fake.removePlugin("c")
        let m = e.manager()
        await #expect {
            _ = try await m.setUp(PodNetworkRequest(pod: pod()))
        } throws: { e in
            let e = e as! CrispError
            return e.code == .notFound && e.message.contains("\"c\"") && e.message.contains("/plugins")
        }
        #expect(e.fake.calls.isEmpty)
        #expect(e.ns.live.isEmpty)
    }

    @Test func notReadyWithoutConfigAndNetnsFailureRollsBack() async throws {
        let e = try env()
        defer { e.dir.cleanup() }
        let m = e.manager()
        e.ns.failNextCreate(.internal("no netns today"))
        await #expect { _ = try await m.setUp(PodNetworkRequest(pod: pod())) } throws: {
            ($0 as! CrispError).message.contains("no netns today")
        }
        #expect(e.fake.calls.isEmpty && m.cache.podIDs().isEmpty)

        try FileManager.default.removeItem(atPath: e.dir.path + "/net.d/10-fake.conflist")
        let m2 = e.manager()
        await #expect { _ = try await m2.setUp(PodNetworkRequest(pod: pod())) } throws: { e in
            let e = e as! CrispError
            return e.code == .failedPrecondition && e.message.contains("no CNI configuration file")
        }
    }

    @Test func interruptedSetUpIsCleanedUpOnRetry() async throws {
        let e = try env()
        defer { e.dir.cleanup() }
        let m = e.manager()
        let p = pod()
        // What a crash during ADD leaves: a netns and a cache entry without a result.
        _ = try await e.ns.create(name: m.netnsName(podID: p.id), userNamespace: nil)
        let net = try #require(m.watcher.defaultNetwork)
        try m.cache.store(CNICacheEntry(network: net, runtime: CNIRuntimeConf(containerID: p.id, netnsPath: "/x"), pod: p,
                                        result: nil), podID: p.id)
        let a = try await m.setUp(PodNetworkRequest(pod: p))
        #expect(a.ips.first == "10.3.0.2")
        let cmds = e.fake.calls.map { "\($0.command.rawValue) \($0.pluginType)" }
        #expect(cmds == ["DEL c", "DEL b", "DEL a", "ADD a", "ADD b", "ADD c"])
        try await m.tearDown(podID: p.id)
    }

    @Test func concurrentPodsAreIndependent() async throws {
        let e = try env()
        defer { e.dir.cleanup() }
        let m = e.manager()
        let ids = (0..<10).map { _ in sandboxID() }
        try await withThrowingTaskGroup(of: Void.self) { g in
            for id in ids { g.addTask { _ = try await m.setUp(PodNetworkRequest(pod: pod(id))) } }
            try await g.waitForAll()
        }
        #expect(e.ns.live.count == 10)
        #expect(Set(m.cache.podIDs()) == Set(ids))
        try await withThrowingTaskGroup(of: Void.self) { g in
            for id in ids { g.addTask { try await m.tearDown(podID: id) } }
            try await g.waitForAll()
        }
        #expect(e.ns.live.isEmpty && m.cache.podIDs().isEmpty)
    }
}
