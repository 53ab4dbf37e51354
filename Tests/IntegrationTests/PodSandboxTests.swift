import CRIAPI
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import Testing

/// Pods through a real crispd, conmon and runc. Host-network pods only until CNI is wired in.
@Suite(.serialized) struct PodSandboxTests {
    static func skipReason() -> String? {
        if !isRoot { return "needs root" }
        for tool in ["/usr/bin/conmon", "/usr/sbin/runc"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is not installed"
        }
        return ensurePauseBinary()
    }

    /// `make test` builds crisp-pause next to crispd; build it here when tests run without make.
    static func ensurePauseBinary() -> String? {
        let dir = URL(fileURLWithPath: CrispdProcess.binary).deletingLastPathComponent()
        let pause = dir.appendingPathComponent("crisp-pause").path
        if FileManager.default.isExecutableFile(atPath: pause) { return nil }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("cmd/crisp-pause/pause.c").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        p.arguments = ["-static", "-O2", "-o", pause, source]
        do { try p.run() } catch { return "cannot build crisp-pause: \(error)" }
        p.waitUntilExit()
        return p.terminationStatus == 0 ? nil : "cannot build crisp-pause (cc -static failed)"
    }

    static func podConfig(_ name: String, cgroupParent: String, hostNetwork: Bool = true,
                          labels: [String: String] = [:]) -> Runtime_V1_PodSandboxConfig {
        var c = Runtime_V1_PodSandboxConfig()
        c.metadata.name = name
        c.metadata.namespace = "default"
        c.metadata.uid = "uid-" + name
        c.metadata.attempt = 0
        c.hostname = name
        c.labels = labels
        c.linux.cgroupParent = cgroupParent
        c.linux.securityContext.namespaceOptions.network = hostNetwork ? .node : .pod
        c.dnsConfig.servers = ["127.0.0.53"]
        c.dnsConfig.searches = ["example.test"]
        return c
    }

    /// A crispd with its own runc state directory and a cgroup parent removed at the end.
    final class World: @unchecked Sendable {
        // @unchecked: used by one test at a time.
        let crispd: CrispdProcess
        let cgroupParent: String
        init() async throws {
            crispd = try CrispdProcess()
            cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
            try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        }

        init(crispd: CrispdProcess, cgroupParent: String) {
            self.crispd = crispd
            self.cgroupParent = cgroupParent
        }

        func restart() async throws -> CrispdProcess {
            let again = try CrispdProcess(dir: crispd.dir)
            try await again.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
            return again
        }

        /// Everything the pods made is gone: mounts, conmon processes, cgroups.
        func assertNoLeaks() {
            let mounts = readSmallFile("/proc/self/mountinfo") ?? ""
            #expect(!mounts.contains(crispd.dir), "mounts left under \(crispd.dir)")
            let conmons = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            let leftover = conmons.filter { pid in
                guard Int(pid) != nil, let cmd = readSmallFile("/proc/\(pid)/cmdline") else { return false }
                return cmd.hasPrefix("/usr/bin/conmon") && cmd.contains(crispd.dir)
                    && !(readSmallFile("/proc/\(pid)/stat")?.contains(") Z ") ?? true)
            }
            #expect(leftover.isEmpty, "conmon processes left: \(leftover)")
            let pins = podIDs.flatMap { id in Self.pinPaths(id).filter { FileManager.default.fileExists(atPath: $0) } }
            #expect(pins.isEmpty, "namespace pins left: \(pins)")
            let cgroups = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory" + cgroupParent)) ?? [])
                .filter { $0.hasPrefix("crisp-") }
            #expect(cgroups.isEmpty, "cgroups left under \(cgroupParent): \(cgroups)")
        }

        /// Pods this crispd has on record (also after a crash) or has logged starting.
        var podIDs: [String] {
            var ids = Set((try? FileManager.default.contentsOfDirectory(atPath: crispd.root + "/sandboxes")) ?? [])
            let log = (try? String(contentsOfFile: crispd.logPath, encoding: .utf8)) ?? ""
            for line in log.split(separator: "\n") where line.contains("pod started") {
                if let r = line.range(of: "pod=") { ids.insert(String(line[r.upperBound...].drop { $0 == "\"" }.prefix(64))) }
            }
            return ids.sorted()
        }

        static func pinPaths(_ id: String) -> [String] {
            ["netns", "ipcns", "utsns", "userns"].map { "/var/run/\($0)/crisp-\(id)" }
        }

        /// Also when a test failed half-way: delete every container runc still knows in this test's
        /// state directory, unmount what is left under the test directory, then remove cgroups.
        func cleanup() {
            let pods = podIDs
            crispd.signal(SIGTERM)
            let runcRoot = crispd.dir + "/runc-root"
            for id in (try? FileManager.default.contentsOfDirectory(atPath: runcRoot)) ?? [] {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/usr/sbin/runc")
                p.arguments = ["--root", runcRoot, "delete", "--force", id]
                try? p.run()
                p.waitUntilExit()
            }
            let mounts = readSmallFile("/proc/self/mountinfo") ?? ""
            for line in mounts.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count > 4, fields[4].hasPrefix(crispd.dir) { umount2(String(fields[4]), Int32(MNT_DETACH)) }
            }
            crispd.stop()
            for path in pods.flatMap(Self.pinPaths) where FileManager.default.fileExists(atPath: path) {
                umount2(path, Int32(MNT_DETACH))
                unlink(path)
            }
            for c in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] {
                let base = "/sys/fs/cgroup/\(c)\(cgroupParent)"
                for child in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where child.hasPrefix("crisp-") {
                    rmdir(base + "/" + child)
                }
                rmdir(base)
            }
        }
    }

    @Test func hostNetworkPodLifecycle() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let world = try await World()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = Self.podConfig("web", cgroupParent: world.cgroupParent, labels: ["app": "web"])
            let id = try await runtime.runPodSandbox(run).podSandboxID
            #expect(id.count == 64)

            var statusReq = Runtime_V1_PodSandboxStatusRequest()
            statusReq.podSandboxID = String(id.prefix(12))
            statusReq.verbose = true
            let st = try await runtime.podSandboxStatus(statusReq)
            #expect(st.status.id == id)
            #expect(st.status.state == .sandboxReady)
            #expect(st.status.metadata.name == "web")
            // In-place resize notice: accepted for a pod that exists, NotFound for one that does not.
            var resize = Runtime_V1_UpdatePodSandboxResourcesRequest()
            resize.podSandboxID = id
            resize.resources.memoryLimitInBytes = 64 << 20
            _ = try await runtime.updatePodSandboxResources(resize)
            resize.podSandboxID = String(repeating: "f", count: 64)
            do {
                _ = try await runtime.updatePodSandboxResources(resize)
                Issue.record("a resize of an unknown pod was accepted")
            } catch let e as RPCError {
                #expect(e.code == .notFound)
            }
            #expect(st.status.labels == ["app": "web"])
            #expect(st.status.linux.namespaces.options.network == .node)
            #expect(st.status.runtimeHandler == "runc")
            #expect(st.status.createdAt > 0)
            let info = st.info["info"] ?? ""
            let pid = (try JSONSerialization.jsonObject(with: Data(info.utf8)) as? [String: Any])?["pid"] as? Int ?? 0
            #expect(pid > 0)
            // `runc start` returns once it has told the container to exec, maybe just before it has.
            let execDeadline = ContinuousClock.now + .seconds(5)
            while readSmallFile("/proc/\(pid)/cmdline")?.hasPrefix("/pause") != true,
                  ContinuousClock.now < execDeadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(readSmallFile("/proc/\(pid)/cmdline")?.hasPrefix("/pause") == true)
            let runDir = world.crispd.runRoot + "/sandboxes/" + id
            #expect(try String(contentsOfFile: runDir + "/resolv.conf", encoding: .utf8) == "search example.test\nnameserver 127.0.0.53\n")
            #expect(try String(contentsOfFile: runDir + "/hostname", encoding: .utf8) == "web\n")

            var list = Runtime_V1_ListPodSandboxRequest()
            #expect(try await runtime.listPodSandbox(list).items.map(\.id) == [id])
            list.filter.labelSelector = ["app": "db"]
            #expect(try await runtime.listPodSandbox(list).items.isEmpty)
            list.filter.labelSelector = ["app": "web"]
            list.filter.id = String(id.prefix(6))
            #expect(try await runtime.listPodSandbox(list).items.count == 1)

            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = id
            _ = try await runtime.stopPodSandbox(stop)
            _ = try await runtime.stopPodSandbox(stop) // idempotent
            statusReq.verbose = false
            #expect(try await runtime.podSandboxStatus(statusReq).status.state == .sandboxNotready)
            #expect(kill(Int32(pid), 0) != 0 || (readSmallFile("/proc/\(pid)/stat")?.contains(") Z ") ?? true))
            list.filter = Runtime_V1_PodSandboxFilter()
            list.filter.state.state = .sandboxReady
            #expect(try await runtime.listPodSandbox(list).items.isEmpty)

            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
            _ = try await runtime.removePodSandbox(remove) // unknown id succeeds
            do {
                _ = try await runtime.podSandboxStatus(statusReq)
                Issue.record("status of a removed pod succeeded")
            } catch let e as RPCError {
                #expect(e.code == .notFound)
            }
            #expect(!FileManager.default.fileExists(atPath: runDir))
        }
        world.assertNoLeaks()
    }

    @Test func badRequestsAreRefusedAndLeaveNothing() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let world = try await World()
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = Self.podConfig("a", cgroupParent: world.cgroupParent)
            let id = try await runtime.runPodSandbox(run).podSandboxID
            do {
                _ = try await runtime.runPodSandbox(run)
                Issue.record("second pod with the same metadata was created")
            } catch let e as RPCError {
                #expect(e.code == .alreadyExists)
                #expect(e.message.contains(id))
            }
            var other = run
            other.config = Self.podConfig("b", cgroupParent: world.cgroupParent, hostNetwork: false)
            do {
                _ = try await runtime.runPodSandbox(other)
                Issue.record("pod-network pod was created")
            } catch let e as RPCError {
                #expect(e.code == .failedPrecondition)
                #expect(e.message.contains("CNI"))
            }
            other.config = Self.podConfig("c", cgroupParent: world.cgroupParent)
            other.runtimeHandler = "kata"
            do {
                _ = try await runtime.runPodSandbox(other)
                Issue.record("unknown handler accepted")
            } catch let e as RPCError {
                #expect(e.code == .invalidArgument)
                #expect(e.message.contains("kata"))
            }
            other.config.metadata.name = ""
            other.runtimeHandler = ""
            do {
                _ = try await runtime.runPodSandbox(other)
                Issue.record("pod without a name accepted")
            } catch let e as RPCError {
                #expect(e.code == .invalidArgument)
            }
            let dirs = try FileManager.default.contentsOfDirectory(atPath: world.crispd.runRoot + "/sandboxes")
            #expect(dirs == [id])
            var remove = Runtime_V1_RemovePodSandboxRequest()
            remove.podSandboxID = id
            _ = try await runtime.removePodSandbox(remove)
        }
        world.assertNoLeaks()
    }

    @Test func podsSurviveADaemonCrash() async throws {
        if let why = Self.skipReason() { print("skipped: \(why)"); return }
        let world = try await World()
        defer { world.cleanup() }
        let ids: [String] = try await world.crispd.withClients { runtime, _ in
            var out: [String] = []
            for name in ["p1", "p2"] {
                var run = Runtime_V1_RunPodSandboxRequest()
                run.config = Self.podConfig(name, cgroupParent: world.cgroupParent)
                out.append(try await runtime.runPodSandbox(run).podSandboxID)
            }
            var stop = Runtime_V1_StopPodSandboxRequest()
            stop.podSandboxID = out[1]
            _ = try await runtime.stopPodSandbox(stop)
            return out
        }
        #expect(world.crispd.signal(SIGKILL) != 0)
        let again = try await world.restart()
        defer { again.signal(SIGTERM) }
        try await again.withClients { runtime, _ in
            let items = try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items
            let states = Dictionary(uniqueKeysWithValues: items.map { ($0.id, $0.state) })
            #expect(states[ids[0]] == .sandboxReady)
            #expect(states[ids[1]] == .sandboxNotready)
            // The same metadata is still reserved after the restart.
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = Self.podConfig("p1", cgroupParent: world.cgroupParent)
            await #expect(throws: RPCError.self) { _ = try await runtime.runPodSandbox(run) }
            for id in ids {
                var remove = Runtime_V1_RemovePodSandboxRequest()
                remove.podSandboxID = id
                _ = try await runtime.removePodSandbox(remove)
            }
            #expect(try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items.isEmpty)
        }
        world.assertNoLeaks()
    }
}
