import IntegrationSupport
import CRIAPI
import CrispCore
import CrispOCI
import CrispTestSupport
import CrispOS
import Foundation
import RegistryTestSupport
import Testing

/// crispctl's commands for people against a real crispd: ps, pods, images, inspect, logs, stop,
/// rm, rmp, with their table, JSON and id outputs, and the exit codes scripts rely on.
@Suite(.serialized) struct CrispctlTests {
    typealias Lifecycle = CRI

    static var crispctl: String { (CrispdProcess.binary as NSString).deletingLastPathComponent + "/crispctl" }

    static func run(_ socket: String, _ args: [String]) async throws -> (code: Int32, out: String, err: String) {
        // The socket goes right after the subcommand: what follows `--` belongs to the container.
        let o = try await Spawn.run(Spawn.Options(path: crispctl, arguments: [args[0], "--socket", socket] + args.dropFirst()),
                                    timeout: .seconds(60))
        return (o.status, String(decoding: o.stdout, as: UTF8.self), o.stderrText)
    }

    @Test func listsInspectsLogsAndRemoves() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        guard FileManager.default.isExecutableFile(atPath: Self.crispctl) else {
            Issue.record("crispctl is not built next to crispd at \(Self.crispctl)")
            return
        }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let socket = world.crispd.socket
        try await world.crispd.withClients { runtime, _ in
            let pod = try await Lifecycle.runPod(runtime, "cli", world: world)
            let id = try await Lifecycle.startContainer(runtime, pod: pod, "talker",
                                                        ["/bin/sh", "-c", "echo hello; echo world; exec sleep 3600"])
            // The two lines are written before sleep runs; wait for them through the CLI itself.
            let logged = try await StreamingTests.eventually {
                try await Self.run(socket, ["logs", id]).out == "hello\nworld\n"
            }
            #expect(logged)
            #expect(try await Self.run(socket, ["logs", "--tail", "1", String(id.prefix(12))]).out == "world\n")
            #expect(try await Self.run(socket, ["logs", "--since", "1h", id]).out == "hello\nworld\n")
            #expect(try await Self.run(socket, ["logs", "--since", "2100-01-01T00:00:00Z", id]).out.isEmpty)
            #expect(try await Self.run(socket, ["logs", "--since", "yesterday", id]).code == 4)

            let ps = try await Self.run(socket, ["ps", "-q"])
            #expect(ps.code == 0 && ps.out == id + "\n", "\(ps)")
            let table = try await Self.run(socket, ["ps"])
            #expect(table.out.hasPrefix("CONTAINER") && table.out.contains("talker") && table.out.contains("Running"), "\(table.out)")
            let json = try await Self.run(socket, ["ps", "-o", "json"])
            let items = try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [[String: Any]]
            #expect(items?.first?["id"] as? String == id)
            let yaml = try await Self.run(socket, ["ps", "-o", "yaml"])
            #expect(yaml.out.hasPrefix("- ") && yaml.out.contains("id: \(id)\n") && yaml.out.contains("name: talker"), "\(yaml.out)")
            let inspectYAML = try await Self.run(socket, ["inspect", "-o", "yaml", id])
            #expect(inspectYAML.code == 0 && inspectYAML.out.contains("state: CONTAINER_RUNNING"), "\(inspectYAML.out.prefix(400))")
            #expect(try await Self.run(socket, ["pods", "-q"]).out == pod.id + "\n")
            #expect(try await Self.run(socket, ["images"]).out.contains("localhost/busybox"))

            let inspect = try await Self.run(socket, ["inspect", id])
            let status = (try JSONSerialization.jsonObject(with: Data(inspect.out.utf8)) as? [[String: Any]])?.first
            #expect((status?["info"] as? [String: String])?["info"]?.contains("\"seccompProfile\":\"RuntimeDefault\"") == true,
                    "\(inspect.out.prefix(400))")
            let podJSON = try await Self.run(socket, ["inspect", pod.id]).out
            let podStatus = (try JSONSerialization.jsonObject(with: Data(podJSON.utf8)) as? [[String: Any]])?.first?["status"] as? [String: Any]
            #expect(podStatus?["id"] as? String == pod.id, "\(podJSON.prefix(300))")

            let stats = try await Self.run(socket, ["stats", "--no-stream"])
            #expect(stats.code == 0 && stats.out.hasPrefix("CONTAINER") && stats.out.contains("talker"), "\(stats)")
            let statsJSON = try await Self.run(socket, ["stats", "--no-stream", "-o", "json"])
            let sample = (try JSONSerialization.jsonObject(with: Data(statsJSON.out.utf8)) as? [[String: Any]])?.first
            #expect(((sample?["memory"] as? [String: Any])?["workingSetBytes"] as? [String: Any])?["value"] != nil, "\(statsJSON.out.prefix(300))")

            let stopped = try await Self.run(socket, ["stop", "-t", "0", id])
            #expect(stopped.code == 0 && stopped.out == id + "\n")
            #expect(try await Self.run(socket, ["ps", "-q"]).out.isEmpty)
            #expect(try await Self.run(socket, ["ps", "-a", "-q"]).out == id + "\n")
            #expect(try await Self.run(socket, ["rm", id]).code == 0)
            let missing = try await Self.run(socket, ["inspect", "0000000000000000"])
            #expect(missing.code == 3 && missing.err.contains("NotFound"), "\(missing)")
            let bad = try await Self.run(socket, ["logs", "nosuchcontainer"])
            #expect(bad.code == 3 && bad.err.contains("(NotFound)"), "\(bad)")
            #expect(try await Self.run(socket, ["rmp", pod.id]).code == 0)
            #expect(try await Self.run(socket, ["pods", "-q"]).out.isEmpty)
        }
        world.assertNoLeaks()
    }

    /// `crispctl run --rm IMAGE -- CMD` prints the command's output, exits with its status and
    /// leaves no pod behind.
    @Test func runPrintsOutputAndRemovesThePod() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let socket = world.crispd.socket
        let hi = try await Self.run(socket, ["run", "--rm", CRI.busyboxImage, "--", "/bin/sh", "-c", "echo hi; exit 3"])
        #expect(hi.out == "hi\n", "\(hi)")
        #expect(hi.code == 3, "\(hi)")
        #expect(try await Self.run(socket, ["pods", "-q"]).out.isEmpty)
        world.assertNoLeaks()
    }

    /// `crispctl pull` through crisp.v1.Images/PullWithProgress: a line per layer as it starts and
    /// ends when stdout is not a terminal; then tag and prune.
    @Test func pullShowsLayerProgressThenTagAndPrune() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.crispctl) else {
            Issue.record("crispctl is not built next to crispd at \(Self.crispctl)")
            return
        }
        guard TestRegistry.available else { print("skipped: \(TestRegistry.binary) is not installed"); return }
        let registry = try await TestRegistry()
        defer { registry.stop() }
        let pusher = RegistryPusher(host: registry.host)
        let pushed: PushedImage
        do {
            pushed = try await pusher.pushImage("test/progress", tag: "1", layers: [try FixtureLayer.busybox(), FixtureLayer([.file("etc/motd", "hi")])])
        } catch {
            try? await pusher.shutdown()
            throw error
        }
        try? await pusher.shutdown()
        let crispd = try CrispdProcess()
        try "[[registry]]\nlocation = \"\(registry.host)\"\ninsecure = true\n".write(toFile: crispd.dir + "/registries.conf", atomically: true, encoding: .utf8)
        try await crispd.start(extra: ["--registries-conf", crispd.dir + "/registries.conf"])
        defer { crispd.stop() }
        let socket = crispd.socket
        let name = "\(registry.host)/test/progress:1"

        let pulled = try await Self.run(socket, ["pull", name])
        #expect(pulled.code == 0, "\(pulled)")
        for layer in pushed.layers {
            let short = String(layer.digest.hex.prefix(12))
            #expect(pulled.out.contains("\(short)  downloading") && pulled.out.contains("\(short)  done"), "\(pulled.out)")
        }
        #expect(pulled.out.contains("Image is up to date for \(pushed.configDigest)"), "\(pulled.out)")
        let again = try await Self.run(socket, ["pull", name])
        #expect(again.out.components(separatedBy: "already present").count == pushed.layers.count + 1, "\(again.out)")
        #expect(try await Self.run(socket, ["pull", "-q", name]).out == pushed.configDigest.description + "\n")

        let tagged = try await Self.run(socket, ["tag", name, "\(registry.host)/test/renamed:2"])
        #expect(tagged.code == 0 && tagged.out.contains(pushed.configDigest.description), "\(tagged)")
        let images = try await Self.run(socket, ["images"])
        #expect(images.out.contains("test/renamed") && images.out.contains("test/progress"), "\(images.out)")
        let missing = try await Self.run(socket, ["tag", "\(registry.host)/test/none:1", "\(registry.host)/test/x:1"])
        #expect(missing.code == 3, "\(missing)")

        let check = try await Self.run(socket, ["check"])
        #expect(check.code == 0 && check.out.hasPrefix("checked 1 images, 2 layers, 0 containers"), "\(check)")
        let checkYAML = try await Self.run(socket, ["check", "-o", "yaml"])
        // Protobuf's JSON mapping writes 64-bit numbers as strings; YAML keeps them so.
        #expect(checkYAML.out.contains("images: '1'"), "\(checkYAML.out)")

        let pruned = try await Self.run(socket, ["prune"])
        #expect(pruned.code == 0 && pruned.out.contains("Deleted"), "\(pruned)")
        #expect(try await Self.run(socket, ["images", "-q"]).out.isEmpty)
    }
}
