import CrispConfig
import Foundation
import Testing

/// Writes files into a fresh temporary directory and removes it afterwards.
final class TempConfigDir {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "crisp-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path + "/crisp.conf.d", withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    var main: String { path + "/crisp.conf" }
    var dropIns: String { path + "/crisp.conf.d" }
    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
    }
    func sources(_ overrides: [(key: String, value: String)] = []) -> ConfigSources {
        ConfigSources(mainFile: main, dropInDirectory: dropIns, overrides: overrides)
    }
}

@Suite struct ConfigDefaultsTests {
    @Test func defaultsWithNoFiles() throws {
        let dir = try TempConfigDir()
        let c = try ConfigLoader.load(dir.sources())
        #expect(c == CrispConfiguration())
        #expect(c.root == "/var/lib/crisp")
        #expect(c.runRoot == "/run/crisp")
        #expect(c.storageDriver == "overlay")
        #expect(c.api.listen == "/run/crisp/crisp.sock")
        #expect(c.api.streamAddress == "127.0.0.1")
        #expect(c.api.streamPort == 0)
        #expect(c.runtime.defaultRuntime == "runc")
        #expect(c.image.pauseImage == "registry.k8s.io/pause:3.10")
        #expect(c.image.registriesConf == "/etc/containers/registries.conf")
        #expect(c.network.networkDir == "/etc/cni/net.d")
        #expect(c.network.pluginDirs == ["/opt/cni/bin", "/usr/lib/cni"])
        #expect(c.metrics.enableMetrics == false)
        #expect(ConfigLoader.validate(c).isEmpty)
    }

    @Test func explicitMissingFileIsAnError() throws {
        let dir = try TempConfigDir()
        var s = dir.sources()
        s.mainFileRequired = true
        #expect {
            _ = try ConfigLoader.load(s)
        } throws: { ($0 as? ConfigError)?.description.contains("configuration file not found") == true }
    }
}

@Suite struct ConfigMergeTests {
    @Test func dropInsApplyInLexicalOrderPerKey() throws {
        let dir = try TempConfigDir()
        try dir.write("crisp.conf", """
            [crisp]
            log_level = "debug"
            root = "/srv/crisp"
            [crisp.api]
            stream_port = 10010
            """)
        try dir.write("crisp.conf.d/20-b.conf", """
            [crisp]
            log_level = "error"
            """)
        try dir.write("crisp.conf.d/10-a.conf", """
            [crisp]
            log_level = "warning"
            storage_driver = "vfs"
            """)
        try dir.write("crisp.conf.d/30-ignored.toml", "this is not read = because of its suffix")
        let c = try ConfigLoader.load(dir.sources())
        #expect(c.logLevel == "error")        // 20-b after 10-a after the main file
        #expect(c.storageDriver == "vfs")     // only 10-a sets it
        #expect(c.root == "/srv/crisp")       // only the main file sets it
        #expect(c.api.streamPort == 10010)
        #expect(c.api.listen == "/run/crisp/crisp.sock") // untouched default
    }

    @Test func flagsWinOverFiles() throws {
        let dir = try TempConfigDir()
        try dir.write("crisp.conf", """
            [crisp]
            log_level = "debug"
            [crisp.network]
            plugin_dirs = ["/a"]
            """)
        let c = try ConfigLoader.load(dir.sources([
            ("crisp.log_level", "warning"), ("crisp.network.plugin_dirs", "/x,/y"),
            ("crisp.metrics.enable_metrics", "true"), ("crisp.api.stream_port", "1234"),
            ("crisp.runtime.runtimes", "kata:/usr/bin/kata:/run/kata"),
        ]))
        #expect(c.logLevel == "warning")
        #expect(c.network.pluginDirs == ["/x", "/y"])
        #expect(c.metrics.enableMetrics)
        #expect(c.api.streamPort == 1234)
        #expect(c.runtime.runtimes["kata"] == .init(runtimePath: "/usr/bin/kata", runtimeRoot: "/run/kata", runtimeType: "oci"))
    }

    @Test func runtimeHandlersMergePerKey() throws {
        let dir = try TempConfigDir()
        try dir.write("crisp.conf", """
            [crisp.runtime]
            default_runtime = "crun"
            [crisp.runtime.runtimes.crun]
            runtime_root = "/run/crun-test"
            """)
        let c = try ConfigLoader.load(dir.sources())
        #expect(c.runtime.defaultRuntime == "crun")
        #expect(c.runtime.runtimes["crun"]?.runtimePath == "/usr/bin/crun")
        #expect(c.runtime.runtimes["crun"]?.runtimeRoot == "/run/crun-test")
        #expect(c.runtime.runtimes["runc"] != nil)
    }
}

@Suite struct BadConfigTests {
    /// Each class of mistake, the file text, and what the message must say.
    static let cases: [(name: String, text: String, expected: [String])] = [
        ("syntax", "[crisp]\nroot = \"/x\"\nlog_level = \n", ["crisp.conf:3", "syntax error"]),
        ("unknown key", "[crisp]\nroot = \"/x\"\n\n[crisp.api]\nlisten = \"/a.sock\"\nlisen = \"/b\"\n",
         ["crisp.conf:6", "crisp.api.lisen", "unknown key"]),
        ("unknown table", "[crisp.apii]\nlisten = \"/a\"\n", ["crisp.conf:1", "crisp.apii", "unknown key"]),
        ("top-level junk", "root = \"/x\"\n", ["crisp.conf:1", "root", "under [crisp]"]),
        ("wrong type", "[crisp.api]\nstream_port = \"10010\"\n", ["crisp.conf:2", "crisp.api.stream_port", "want integer"]),
        ("wrong array type", "[crisp.network]\nplugin_dirs = \"/opt/cni/bin\"\n", ["crisp.network.plugin_dirs", "want array of strings"]),
        ("invalid choice", "[crisp]\nlog_level = \"loud\"\n", ["crisp.conf:2", "crisp.log_level", "invalid value \"loud\""]),
        ("out of range", "[crisp.api]\nstream_port = 70000\n", ["crisp.api.stream_port", "invalid value 70000"]),
        ("relative path", "[crisp]\nroot = \"var/lib/crisp\"\n", ["crisp.root", "absolute path"]),
        ("unsupported driver", "[crisp]\nstorage_driver = \"devicemapper\"\n", ["not supported on this host"]),
        ("unknown default runtime", "[crisp.runtime]\ndefault_runtime = \"kata\"\n", ["crisp.runtime.default_runtime", "not a configured runtime"]),
        ("bad handler key", "[crisp.runtime.runtimes.runc]\nruntime_pth = \"/x\"\n", ["crisp.conf:2", "runtime_pth", "unknown key"]),
        ("unknown capability", "[crisp.runtime]\ndefault_capabilities = [\"CHOWN\", \"FLY\"]\n", ["unknown capability \"FLY\""]),
    ]

    @Test(arguments: cases.indices)
    func badConfigStopsWithAClearMessage(_ index: Int) throws {
        let (name, text, expected) = Self.cases[index]
        let dir = try TempConfigDir()
        try dir.write("crisp.conf", text)
        do {
            _ = try ConfigLoader.load(dir.sources())
            Issue.record("\(name): loading succeeded")
        } catch {
            for fragment in expected {
                #expect(error.description.contains(fragment), "\(name): \(error.description) lacks \(fragment)")
            }
        }
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let dir = try TempConfigDir()
        try dir.write("crisp.conf", "[crisp]\nlog_level = \"loud\"\nnope = 1\n[crisp.api]\nstream_port = -1\n")
        do {
            _ = try ConfigLoader.load(dir.sources())
            Issue.record("loading succeeded")
        } catch {
            #expect(error.problems.count == 3)
        }
    }

    @Test func badFlagValue() throws {
        let dir = try TempConfigDir()
        #expect {
            _ = try ConfigLoader.load(dir.sources([("crisp.api.stream_port", "lots")]))
        } throws: { ($0 as? ConfigError)?.description.contains("want an integer") == true }
    }
}

@Suite struct ConfigRenderingTests {
    @Test func tomlRoundTrips() throws {
        var c = CrispConfiguration()
        c.root = "/srv/with \"quotes\" and \\ backslash"
        c.logLevel = "debug"
        c.storageOptions = ["overlay.mount_program=", "size=10G"]
        c.api.streamPort = 10010
        c.runtime.runtimes["kata-fc"] = .init(runtimePath: "/opt/kata/bin/runtime", runtimeRoot: "/run/kata", runtimeType: "oci")
        c.metrics.enableMetrics = true
        c.network.pluginDirs = []
        var back = CrispConfiguration()
        let problems = ConfigLoader.apply(toml: c.toml(), source: "rendered", to: &back)
        #expect(problems.isEmpty, "\(problems)")
        #expect(back == c)
    }

    @Test func defaultsRoundTripAndAreValid() throws {
        let dir = try TempConfigDir()
        try dir.write("crisp.conf", CrispConfiguration().toml())
        #expect(try ConfigLoader.load(dir.sources()) == CrispConfiguration())
    }

    @Test func jsonHasEveryKey() throws {
        let json = CrispConfiguration().json()
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        for key in ConfigSchema.keys {
            let table = object?[key.table] as? [String: Any]
            #expect(table?[key.name] != nil, "\(key.path) missing from JSON")
        }
    }

    @Test func everyKeyHasAFlagAndADoc() {
        var flags = Set<String>()
        for key in ConfigSchema.keys {
            #expect(!key.doc.isEmpty)
            #expect(flags.insert(key.flag).inserted, "duplicate flag \(key.flag)")
        }
        let reference = ConfigSchema.referenceMarkdown()
        for key in ConfigSchema.keys { #expect(reference.contains("`\(key.path)`")) }
    }
}
