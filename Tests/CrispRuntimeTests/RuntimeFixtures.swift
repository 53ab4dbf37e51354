import CrispCore
import CrispOCI
import CrispRuntime
import Foundation
import Testing

/// A throwaway container world: a busybox root filesystem, bundle, exit and log directories, and
/// a cgroup parent that is removed (in every v1 controller) when the test ends.
final class RuntimeWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time; fields are immutable after init.
    let dir: String
    let cgroupParent: String
    let watcher: ExitWatcher
    let tracker = ExitTracker()
    let followTask: Task<Void, Never>
    var rootfs: String { dir + "/rootfs" }
    var exitDir: String { dir + "/exits" }

    static var busybox: String? {
        ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Why this machine cannot run these tests, or nil.
    static func unavailable(runtime: String) -> String? {
        if getuid() != 0 { return "needs root" }
        if busybox == nil { return "needs busybox (apt busybox-static)" }
        if !FileManager.default.isExecutableFile(atPath: runtime) { return "\(runtime) is not installed" }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/conmon") { return "/usr/bin/conmon is not installed" }
        return nil
    }

    init() throws {
        dir = "/tmp/crisp-rt-\(UUID().uuidString.prefix(8).lowercased())"
        cgroupParent = "/crisp-test-\(UUID().uuidString.prefix(8).lowercased())"
        let fm = FileManager.default
        let rootfs = dir + "/rootfs"
        for sub in ["rootfs/bin", "rootfs/etc", "rootfs/proc", "rootfs/sys", "rootfs/dev", "rootfs/tmp", "exits", "logs", "sockets"] {
            try fm.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: RuntimeWorld.busybox!, toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "echo", "sleep", "cat", "id", "ls", "true", "false", "kill", "ps", "dd", "head", "tail", "grep"] {
            try fm.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nnogroup:x:65534:\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        watcher = try ExitWatcher(directory: dir + "/exits")
        let w = watcher, t = tracker
        followTask = Task { await t.follow(w) }
    }

    func input(id: String, command: [String]) -> ContainerSpecInput {
        var i = ContainerSpecInput(id: id, rootfs: rootfs)
        i.process.command = command
        i.defaults.capabilities = ["CHOWN", "KILL", "SETUID", "SETGID"]
        i.defaults.minimumOOMScoreAdj = 0
        i.sandbox.hostNetwork = true
        i.sandbox.cgroupParent = cgroupParent
        i.passwd = try? String(contentsOfFile: rootfs + "/etc/passwd", encoding: .utf8)
        i.group = try? String(contentsOfFile: rootfs + "/etc/group", encoding: .utf8)
        return i
    }

    func launch(id: String, handler: RuntimeHandler) -> ContainerLaunch {
        ContainerLaunch(id: id, name: "test-" + id.prefix(8), handler: handler, bundle: dir + "/bundles/" + id,
                        logPath: dir + "/logs/" + id + ".log")
    }

    func runtime() -> ConmonRuntime {
        ConmonRuntime(conmon: Conmon(path: "/usr/bin/conmon"), exits: tracker, exitDirectory: exitDir,
                      socketDirectory: dir + "/sockets", scratchDirectory: dir + "/scratch")
    }

    func logLines(id: String) -> [String] {
        ((try? String(contentsOfFile: dir + "/logs/" + id + ".log", encoding: .utf8)) ?? "")
            .split(separator: "\n").map(String.init)
    }

    func cleanup(handler: RuntimeHandler, ids: [String]) async {
        for id in ids { try? await RuncCLI(handler: handler).delete(id: id, force: true) }
        watcher.stop()
        followTask.cancel()
        let fm = FileManager.default
        if let controllers = try? fm.contentsOfDirectory(atPath: "/sys/fs/cgroup") {
            for c in controllers {
                let base = "/sys/fs/cgroup/\(c)\(cgroupParent)"
                if let children = try? fm.contentsOfDirectory(atPath: base) {
                    for child in children where child.hasPrefix("crisp-") { rmdir(base + "/" + child) }
                }
                rmdir(base)
            }
        }
        try? fm.removeItem(atPath: dir)
    }
}

func randomID() -> String { ContainerID.random().rawValue }
