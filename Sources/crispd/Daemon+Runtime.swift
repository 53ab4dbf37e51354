import CrispConfig
import CrispCore
import CrispRuntime
import CrispService
import CrispSecurity
import CrispStorage
import CrispNetwork
import CrispOS
import Foundation
import Logging

/// Builds the container runtime side: exit watching, conmon/runc driver, pod service.
extension Daemon {
    struct RuntimeParts {
        let watcher: ExitWatcher
        let tracker: ExitTracker
        let sandboxes: SandboxService
        let containers: ContainerService
    }

    /// CNI: configs watched with inotify, results cached under root, namespaces pinned by crisp-pinns.
    func makeNetwork() throws -> PodNetworkManager {
        let manager = PodNetworkManager(
            options: PodNetworkOptions(networkDir: config.network.networkDir, pluginDirs: config.network.pluginDirs,
                                       defaultNetwork: config.network.cniDefaultNetwork, cacheDir: config.root + "/cni/results"),
            namespaces: Self.pinns(),
            logger: Logger(label: "cni"))
        try manager.start()
        return manager
    }

    static func pinns() -> PinnsNamespaces {
        PinnsNamespaces(pinnsPath: helperBinary("crisp-pinns"), pinDir: "/var/run")
    }

    func makeRuntime(storage: Storage, network: PodNetworkManager, images: ImageManager, live: LiveConfiguration,
                     handlers: [String: RuntimeHandler], logger: Logger) async throws -> RuntimeParts {
        let watcher = try ExitWatcher(directory: config.runRoot + "/exits")
        let tracker = ExitTracker()
        let runtime = ConmonRuntime(conmon: Conmon(path: config.runtime.conmon), exits: tracker,
                                    exitDirectory: config.runRoot + "/exits", socketDirectory: config.runRoot + "/attach",
                                    scratchDirectory: config.runRoot + "/scratch")
        try runtime.clearScratch()
        let status = readSmallFile("/proc/self/status") ?? ""
        var settings = SandboxService.Settings(config: config, pauseBinary: Self.pauseBinary(),
                                               minimumOOMScoreAdj: Self.minimumOOMScoreAdj(status: status),
                                               boundingCapabilities: Self.boundingCapabilities(status: status))
        settings.handlers.merge(handlers) { $1 }
        settings.security = try await Self.security(config, status: status, logger: logger)
        let events = EventHub()
        let sandboxes = SandboxService(settings: settings, runtime: runtime, network: network, namespaces: Self.pinns(),
                                       infraImages: StorageInfraImages(storage: storage, images: images), live: live,
                                       events: events, logger: Logger(label: "pods"))
        let containers = ContainerService(settings: settings, config: config, runtime: runtime, storage: storage,
                                          sandboxes: sandboxes, events: events, logger: Logger(label: "containers"))
        await tracker.onExit { exit in
            Task {
                await sandboxes.infraExited(exit)
                await containers.exited(exit)
            }
        }
        // Exits that happened while crispd was down are already in the directory.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: watcher.directory)) ?? [] {
            if let e = watcher.recordedExit(id: name) { await tracker.record(e) }
        }
        Task { await tracker.follow(watcher) }
        await sandboxes.restore()
        await containers.restore(exits: tracker)
        return RuntimeParts(watcher: watcher, tracker: tracker, sandboxes: sandboxes, containers: containers)
    }

    /// Host facts for seccomp, AppArmor and SELinux, crisp's AppArmor profile loaded where
    /// AppArmor is on, and `seccomp_profile` read. A bad `seccomp_profile` stops the daemon:
    /// running every RuntimeDefault container without the profile the operator chose is worse.
    static func security(_ config: CrispConfiguration, status: String, logger: Logger) async throws -> SecuritySettings {
        var host = SecurityProbe.detect(selfStatus: status)
        if host.appArmorEnabled && config.runtime.appArmorProfile == AppArmorPolicy.defaultProfileName {
            do { host = try await AppArmorLoader.ensureDefault(host) } catch {
                logger.error("crisp's AppArmor profile could not be loaded; RuntimeDefault AppArmor requests will fail",
                             metadata: ["error": "\(error)"])
            }
        }
        logger.info("security", metadata: ["seccomp": "on", "apparmor": "\(host.appArmorEnabled ? "on" : "off")",
                                           "selinux": "\(host.selinuxEnabled ? "on" : "off")", "arch": "\(host.machine)",
                                           "kernel_lacks": "\(host.kernelLacksArchitectures.sorted().joined(separator: ","))"])
        return try SecuritySettings.load(config: config, host: host)
    }

    /// Whether pods may have their own user namespace here: crisp-pinns makes a user namespace
    /// and an idmapped mount of a directory on the storage filesystem, and the mount must show
    /// the mapped owner. Everything it made is removed again.
    static func probeUserNamespaces(_ config: CrispConfiguration, logger: Logger) async -> Bool {
        let dir = config.root + "/userns-probe"
        let pinns = PinnsNamespaces(pinnsPath: helperBinary("crisp-pinns"), pinDir: dir)
        let name = "probe-\(getpid())"
        try? Mounts.unmount(dir + "/mapped", detach: true)
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var why = ""
        // The mapped root walks to each root filesystem under crisp's root as an unprivileged
        // host uid; crisp opens its own directories for search, but not the ones above them.
        var parent = (config.root as NSString).deletingLastPathComponent
        while parent != "/" && !parent.isEmpty {
            var st = stat()
            if stat(parent, &st) == 0 && st.st_mode & 0o001 == 0 {
                logger.notice("pods with their own user namespace are refused on this node",
                              metadata: ["reason": "\(parent), above crisp's root, is not searchable by others (mode \(String(st.st_mode & 0o7777, radix: 8)))"])
                return false
            }
            parent = (parent as NSString).deletingLastPathComponent
        }
        do {
            for d in ["source", "mapped"] { try FileManager.default.createDirectory(atPath: dir + "/" + d, withIntermediateDirectories: true) }
            let userns = try await pinns.createUserNamespace(name: name, uidMap: "0 100000 1", gidMap: "0 100000 1")
            try await pinns.idmap(userNamespace: userns, [(dir + "/source", dir + "/mapped")])
            defer { try? Mounts.unmount(dir + "/mapped", detach: true) }
            var st = stat()
            if stat(dir + "/mapped", &st) == 0 && st.st_uid == 100000 {
                try? await pinns.remove(name: name, kinds: [.user])
                logger.info("user namespaces supported: idmapped mounts work on the storage filesystem")
                return true
            }
            why = "the idmapped mount does not show the mapped owner"
        } catch {
            why = "\(error)"
        }
        try? await pinns.remove(name: name, kinds: [.user])
        logger.notice("pods with their own user namespace are refused on this node", metadata: ["reason": "\(why)"])
        return false
    }

    /// Every configured handler with the features its runtime reports (`RUNTIME features`), probed
    /// in parallel once at start-up.
    static func probeHandlers(_ config: CrispConfiguration) async -> [String: RuntimeHandler] {
        await withTaskGroup(of: RuntimeHandler.self) { group in
            for h in SandboxService.Settings.handlers(from: config).values { group.addTask { await h.probedFeatures() } }
            var out: [String: RuntimeHandler] = [:]
            for await h in group { out[h.name] = h }
            return out
        }
    }

    /// crisp-pause is installed next to crispd (`make build`, `make test`).
    static func pauseBinary() -> String {
        ProcessInfo.processInfo.environment["CRISP_PAUSE_BINARY"] ?? helperBinary("crisp-pause")
    }

    /// crisp's helper programs live next to crispd, or in libexec when installed.
    static func helperBinary(_ name: String) -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let dir = exe.deletingLastPathComponent()
        // Next to crispd (the build tree), then PREFIX/libexec/crisp as `make install` lays it out.
        let candidates = [dir.appendingPathComponent(name).path,
                          dir.deletingLastPathComponent().appendingPathComponent("libexec/crisp/" + name).path,
                          "/usr/local/libexec/crisp/" + name, "/usr/libexec/crisp/" + name]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// This process's capability bounding set: containers cannot get more than it.
    static func boundingCapabilities(status: String) -> [String]? {
        ProcStatus.field("CapBnd", in: status).flatMap(LinuxCapabilities.names(inMask:))
    }

    /// The lowest oom_score_adj this process may give its children: anything with
    /// CAP_SYS_RESOURCE, otherwise no lower than its own.
    static func minimumOOMScoreAdj(status: String) -> Int {
        if let effective = ProcStatus.field("CapEff", in: status), LinuxCapabilities.names(inMask: effective)?.contains("CAP_SYS_RESOURCE") == true {
            return -1000
        }
        let own = (try? String(contentsOfFile: "/proc/self/oom_score_adj", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return own.flatMap(Int.init) ?? 0
    }
}
