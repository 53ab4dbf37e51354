import IntegrationSupport
import CRIAPI
import CrispOS
import Foundation
import Glibc
import Testing

/// `make install`'s layout (scripts/install.sh, into a DESTDIR), and the installed crispd as
/// systemd runs it: READY=1 on NOTIFY_SOCKET once it serves, its helpers found in
/// PREFIX/libexec/crisp, a pod run with them; `make uninstall` removes every file again.
@Suite(.serialized) struct InstallTests {
    static var packageRoot: String {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.path
    }

    static func run(_ path: String, _ args: [String], env: [String] = [], in dir: String) async throws -> Spawn.Output {
        var o = Spawn.Options(path: path, arguments: args, environment: Spawn.baseEnvironment + ["PATH=/opt/swift/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + env)
        o.directory = dir
        return try await Spawn.run(o, timeout: .seconds(600))
    }

    /// A datagram socket bound at `path`, as systemd's notify socket is.
    static func notifySocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, rc == 0 else { throw TestFailure("cannot bind \(path): errno \(errno)") }
        // The wait below is for crispd's message; the timeout only bounds a broken daemon.
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    @Test func installedCrispdRunsAsANotifyServiceAndUninstallRemovesIt() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let root = Self.packageRoot
        let bin = (CrispdProcess.binary as NSString).deletingLastPathComponent
        let crispd = try CrispdProcess()
        let dest = crispd.dir + "/dest"
        defer { crispd.stop() }
        let env = ["BIN=\(bin)", "PREFIX=/usr", "DESTDIR=\(dest)", "SYSCONFDIR=/etc", "UNITDIR=/usr/lib/systemd/system"]
        let installed = try await Self.run(root + "/scripts/install.sh", [], env: env, in: root)
        #expect(installed.status == 0, "\(installed.stderrText)")
        for f in ["/usr/bin/crispd", "/usr/bin/crispctl", "/usr/libexec/crisp/crisp-pinns", "/usr/libexec/crisp/crisp-pause",
                  "/usr/lib/systemd/system/crispd.service", "/etc/crisp/crisp.conf", "/usr/share/man/man1/crispd.1",
                  "/usr/share/man/man1/crispctl.exec.1", "/usr/share/bash-completion/completions/crispctl",
                  "/usr/share/zsh/site-functions/_crispd", "/usr/share/fish/vendor_completions.d/crispd.fish"] {
            #expect(FileManager.default.fileExists(atPath: dest + f), "\(f) not installed")
        }
        let unit = try String(contentsOfFile: dest + "/usr/lib/systemd/system/crispd.service", encoding: .utf8)
        for line in ["Type=notify", "ExecStart=/usr/bin/crispd", "Delegate=yes", "KillMode=process", "After=network-online.target"] {
            #expect(unit.contains(line + "\n"), "unit lacks \(line)")
        }
        // The generated configuration is the daemon's own: it checks clean.
        let check = try await Self.run(dest + "/usr/bin/crispctl", ["config-check", "--config", dest + "/etc/crisp/crisp.conf", "--config-dir", dest + "/etc/crisp/crisp.conf.d"], in: root)
        #expect(check.status == 0, "\(String(decoding: check.stdout, as: UTF8.self)) \(check.stderrText)")

        let notify = try Self.notifySocket(crispd.dir + "/notify.sock")
        defer { close(notify) }
        crispd.executable = dest + "/usr/bin/crispd"
        crispd.environment += ["NOTIFY_SOCKET=\(crispd.dir)/notify.sock"]
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"], waitForSocket: false)
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(notify, &buffer, buffer.count, 0)
        let message = n > 0 ? String(decoding: buffer.prefix(n), as: UTF8.self) : "(nothing, errno \(errno))"
        #expect(message.hasPrefix("READY=1\n"), "\(message)")
        try await crispd.waitUntilServing()
        // A pod's IPC/UTS namespaces are pinned by crisp-pinns, found in /usr/libexec/crisp.
        let world = CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
        try await crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "installed", world: world)
            try await CRI.removePod(runtime, pod.id)
        }
        crispd.stop()
        world.assertNoLeaks()

        let removed = try await Self.run("/usr/bin/make", ["uninstall", "DESTDIR=\(dest)", "PREFIX=/usr"], in: root)
        #expect(removed.status == 0, "\(removed.stderrText)")
        let left = (FileManager.default.enumerator(atPath: dest)?.allObjects as? [String] ?? [])
            .filter { (try? FileManager.default.attributesOfItem(atPath: dest + "/" + $0)[.type] as? FileAttributeType) != .typeDirectory }
        #expect(left.isEmpty, "left after uninstall: \(left)")
    }
}
