import CrispCore
import Foundation
import Testing
@testable import CrispNetwork

@Suite struct CNIConfigTests {
    static let invalid: [(file: String, text: String, reason: String)] = [
        ("a.conflist", "{not json", "not valid JSON"),
        ("b.conflist", #"{"cniVersion":"1.0.0","name":"x","type":"bridge"}"#, "needs a \"plugins\" array"),
        ("c.conf", #"{"cniVersion":"1.0.0","type":"bridge"}"#, "missing \"name\""),
        ("d.conf", #"{"cniVersion":"9.9.9","name":"x","type":"bridge"}"#, "cniVersion \"9.9.9\" is not supported"),
        ("e.conflist", #"{"cniVersion":"1.0.0","name":"x","plugins":[]}"#, "non-empty array"),
        ("f.conflist", #"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../evil"}]}"#, "plain binary name"),
        ("g.conflist", #"{"cniVersion":"1.0.0","name":"x","plugins":[{"ipam":{}}]}"#, "has no \"type\""),
        ("h.json", "[1,2]", "must be a JSON object"),
    ]

    @Test(arguments: invalid)
    func invalidFilesAreRejectedWithAReason(file: String, text: String, reason: String) throws {
        #expect {
            _ = try CNINetworkConfigList(bytes: Array(text.utf8), source: "/d/" + file)
        } throws: { e in
            guard let e = e as? CrispError else { return false }
            return e.code == .invalidArgument && e.message.contains(reason) && e.message.contains("/d/" + file)
        }
    }

    @Test func conflistAndSingleConfParse() throws {
        let list = try CNINetworkConfigList(bytes: Array(#"""
            {"cniVersion":"0.4.0","name":"net1","disableCheck":true,"plugins":[
              {"type":"bridge","bridge":"b0","mtu":1500},
              {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}
            """#.utf8), source: "x.conflist")
        #expect(list.name == "net1" && list.cniVersion == "0.4.0" && list.disableCheck)
        #expect(list.plugins.map(\.type) == ["bridge", "portmap"])
        #expect(list.plugins[1].capabilities == ["portMappings"])
        #expect(list.plugins[0].raw["mtu"] == .int(1500))

        let single = try CNINetworkConfigList(bytes: Array(#"{"cniVersion":"1.0.0","name":"n","type":"ptp"}"#.utf8), source: "x.conf")
        #expect(single.plugins.count == 1 && single.plugins[0].type == "ptp")
    }

    @Test func loaderSortsSkipsAndPicksDefault() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try dir.write("20-b.conflist", #"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}"#)
        try dir.write("10-a.conf", #"{"cniVersion":"1.0.0","name":"a","type":"bridge"}"#)
        try dir.write("05-bad.json", "{")
        try dir.write("30-dup.conflist", #"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"ptp"}]}"#)
        try dir.write("README.md", "ignored")
        try dir.write(".hidden.conf", "ignored")
        let set = CNIConfigLoader(directory: dir.path).load()
        #expect(set.networks.map(\.name) == ["a", "b"])
        #expect(set.defaultNetwork?.name == "a")
        #expect(set.skipped.map(\.file) == ["05-bad.json", "30-dup.conflist"])
        #expect(set.skipped[1].reason.contains("already defined"))

        let named = CNIConfigLoader(directory: dir.path, defaultNetworkName: "b").load()
        #expect(named.defaultNetwork?.name == "b")
        let missing = CNIConfigLoader(directory: dir.path, defaultNetworkName: "zzz").load()
        #expect(missing.defaultNetwork == nil)
        let r = NetworkReadiness.from(missing)
        #expect(!r.ready && r.reason == "NetworkPluginNotReady" && r.message.contains("\"zzz\"") && r.message.contains(dir.path))
    }

    @Test func emptyOrMissingDirectoryIsNotReadyNamingIt() throws {
        let r = NetworkReadiness.from(CNIConfigLoader(directory: "/nonexistent/crisp-net").load())
        #expect(!r.ready)
        #expect(r.reason == NetworkReadiness.notReadyReason)
        #expect(r.message.contains("/nonexistent/crisp-net"))
    }

    @Test func watcherFlipsReadinessWhenDirectoryIsEmptiedAndRefilled() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let watcher = CNIConfigWatcher(loader: CNIConfigLoader(directory: dir.path + "/net.d"), logger: testLogger)
        try watcher.start()
        defer { watcher.stop() }
        let updates = watcher.readinessUpdates()
        #expect(await waitForReadiness(updates, ready: false))
        try dir.write("net.d/10-x.conflist", #"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}"#)
        #expect(await waitForReadiness(updates, ready: true))
        #expect(watcher.defaultNetwork?.name == "x")
        try FileManager.default.removeItem(atPath: dir.path + "/net.d/10-x.conflist")
        #expect(await waitForReadiness(updates, ready: false))
        #expect(watcher.readiness.message.contains(dir.path + "/net.d"))
        // An invalid file alone keeps it not ready, with the reason in the message.
        try dir.write("net.d/20-bad.conf", "{")
        #expect(await waitForReadiness(updates) { !$0.ready && $0.message.contains("20-bad.conf") })
        #expect(!watcher.readiness.ready)
        #expect(watcher.readiness.message.contains("20-bad.conf"))
        try dir.write("net.d/30-y.conf", #"{"cniVersion":"0.4.0","name":"y","type":"ptp"}"#)
        #expect(await waitForReadiness(updates, ready: true))
        #expect(watcher.defaultNetwork?.name == "y")
    }
}

@Suite struct CNIDefaultConfigTests {
    @Test func installsOnlyIntoAnEmptyDirectory() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        #expect(try CNIDefaultConfig.installIfMissing(in: dir.path + "/net.d"))
        let set = CNIConfigLoader(directory: dir.path + "/net.d").load()
        #expect(set.defaultNetwork?.name == "crisp")
        #expect(set.defaultNetwork?.plugins.map(\.type) == ["bridge", "portmap"])
        #expect(try !CNIDefaultConfig.installIfMissing(in: dir.path + "/net.d"))

        try dir.write("other/05-mine.conf", #"{"cniVersion":"1.0.0","name":"mine","type":"ptp"}"#)
        #expect(try !CNIDefaultConfig.installIfMissing(in: dir.path + "/other"))
        #expect(CNIConfigLoader(directory: dir.path + "/other").load().networks.map(\.name) == ["mine"])
    }
}

@Suite struct CNIConfigWatcherDirectoryTests {
    @Test func watcherFollowsTheDirectoryBeingRemovedAndRecreated() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let netd = dir.path + "/net.d"
        try dir.write("net.d/10-x.conflist", #"{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}"#)
        let watcher = CNIConfigWatcher(loader: CNIConfigLoader(directory: netd), logger: testLogger)
        try watcher.start()
        defer { watcher.stop() }
        let updates = watcher.readinessUpdates()
        #expect(await waitForReadiness(updates, ready: true))
        try FileManager.default.removeItem(atPath: netd)
        #expect(await waitForReadiness(updates, ready: false))
        try dir.write("net.d/20-y.conflist", #"{"cniVersion":"1.0.0","name":"y","plugins":[{"type":"bridge"}]}"#)
        #expect(await waitForReadiness(updates, ready: true))
        #expect(watcher.defaultNetwork?.name == "y")
        // And it still watches the new directory.
        try FileManager.default.removeItem(atPath: netd + "/20-y.conflist")
        #expect(await waitForReadiness(updates, ready: false))
    }
}
