public import CRIAPI
import CrispCore
public import CrispOS
import CrispStorage
import CrispTestSupport
public import Foundation
import Glibc
import Logging

/// What every integration test's pods and containers start from: whether they can run here, the
/// kubelet-like configs, and busybox in crispd's storage.
extension CRI {
    /// Why pods cannot run here (not root, conmon or runc missing), or nil.
    public static func skipReason() -> String? {
        if !isRoot { return "needs root" }
        for tool in ["/usr/bin/conmon", "/usr/sbin/runc"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is not installed"
        }
        return ensurePauseBinary()
    }

    /// `make test` builds crisp-pause next to crispd; build it here when tests run without make.
    public static func ensurePauseBinary() -> String? {
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

    public static func podConfig(_ name: String, cgroupParent: String, hostNetwork: Bool = true,
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

    public static let busyboxImage = "localhost/busybox:crisp-test"

    /// Writes a one-layer busybox image into `root/storage`, as a pull would have.
    public static func seedBusybox(root: String, runRoot: String, driver: String = "overlay") async throws {
        guard let busybox = ["/bin/busybox", "/usr/bin/busybox"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw TestFailure("busybox is not installed")
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: busybox)))
        var entries: [TarEntry] = [.dir("bin"), TarEntry("bin/busybox", .file(.bytes(bytes)), mode: 0o755),
                                   .dir("etc"), .dir("tmp", mode: 0o1777), .dir("proc"), .dir("sys"), .dir("dev"),
                                   .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n"),
                                   .file("etc/group", "root:x:0:\nnogroup:x:65534:\naudio:x:29:nobody\n")]
        for applet in ["sh", "echo", "sleep", "cat", "id", "ls", "grep", "ps", "true", "false", "mkdir", "mount"] {
            entries.append(.symlink("bin/" + applet, to: "busybox"))
        }
        let tar = try TarBuilder.build(entries)
        let tarPath = runRoot + "-seed.tar"
        try Data(tar).write(to: URL(fileURLWithPath: tarPath))
        defer { try? FileManager.default.removeItem(atPath: tarPath) }
        let storage = try await Storage.open(StorageOptions(root: root + "/storage", runRoot: runRoot + "/storage", driver: driver),
                                             logger: Logger(label: "seed"))
        let diff = diffDigest(of: tar)
        let fd = open(tarPath, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        let layer = try await storage.applyLayer(CreateLayerOptions(id: LayerID(uncheckedRawValue: diff.hex), parent: nil,
                                                                    expectedDiffDigest: diff), fileDescriptor: fd)
        let config = Array(#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","FROM_IMAGE=yes"],"Cmd":["/bin/sh"],"WorkingDir":"/tmp","Volumes":{"/data":{}}},"rootfs":{"type":"layers","diff_ids":["\#(diff)"]}}"#.utf8)
        _ = try await storage.createImage(CreateImageOptions(id: diffDigest(of: config), names: [busyboxImage],
                                                             topLayer: layer.id, config: config))
        await storage.close()
    }

    public static func containerConfig(_ name: String, _ command: [String], logPath: String) -> Runtime_V1_ContainerConfig {
        var c = Runtime_V1_ContainerConfig()
        c.metadata.name = name
        c.image.image = busyboxImage
        c.command = command
        c.logPath = logPath
        var env = Runtime_V1_KeyValue()
        env.key = "FROM_REQUEST"
        env.value = "yes"
        c.envs = [env]
        return c
    }
}

/// A crispd with its own runc state directory and a cgroup parent removed at the end.
public final class CRIWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    public let crispd: CrispdProcess
    public let cgroupParent: String
    public init() async throws {
        crispd = try CrispdProcess()
        cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
    }

    public init(crispd: CrispdProcess, cgroupParent: String) {
        self.crispd = crispd
        self.cgroupParent = cgroupParent
    }

    public func restart() async throws -> CrispdProcess {
        let again = try CrispdProcess(dir: crispd.dir)
        try await again.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        return again
    }

    /// What the pods left behind: mounts, conmon processes, namespace pins, cgroups (empty when
    /// everything is gone).
    public func leaks() -> [String] {
        var found: [String] = []
        let mounts = readSmallFile("/proc/self/mountinfo") ?? ""
        if mounts.contains(crispd.dir) { found.append("mounts left under \(crispd.dir)") }
        let conmons = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let leftover = conmons.filter { pid in
            guard Int(pid) != nil, let cmd = readSmallFile("/proc/\(pid)/cmdline") else { return false }
            return cmd.hasPrefix("/usr/bin/conmon") && cmd.contains(crispd.dir)
                && !(readSmallFile("/proc/\(pid)/stat")?.contains(") Z ") ?? true)
        }
        if !leftover.isEmpty { found.append("conmon processes left: \(leftover)") }
        let pins = podIDs.flatMap { id in Self.pinPaths(id).filter { FileManager.default.fileExists(atPath: $0) } }
        if !pins.isEmpty { found.append("namespace pins left: \(pins)") }
        let cgroups = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory" + cgroupParent)) ?? [])
            .filter { $0.hasPrefix("crisp-") }
        if !cgroups.isEmpty { found.append("cgroups left under \(cgroupParent): \(cgroups)") }
        return found
    }

    /// Pods this crispd has on record (also after a crash) or has logged starting.
    public var podIDs: [String] {
        var ids = Set((try? FileManager.default.contentsOfDirectory(atPath: crispd.root + "/sandboxes")) ?? [])
        let log = (try? String(contentsOfFile: crispd.logPath, encoding: .utf8)) ?? ""
        for line in log.split(separator: "\n") where line.contains("pod started") {
            if let r = line.range(of: "pod=") { ids.insert(String(line[r.upperBound...].drop { $0 == "\"" }.prefix(64))) }
        }
        return ids.sorted()
    }

    public static func pinPaths(_ id: String) -> [String] {
        ["netns", "ipcns", "utsns", "userns"].map { "/var/run/\($0)/crisp-\(id)" }
    }

    /// Also when a test failed half-way: delete every container runc still knows in this test's
    /// state directory, unmount what is left under the test directory, then remove cgroups.
    public func cleanup() {
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
