public import CrispCore
import CrispConfig
import CrispOCI
import CrispOS
import CrispSecurity
import CrispRuntime
import Foundation
import Logging
import CrispNetwork

extension SandboxService {
    /// Creates the pod: its files, /dev/shm, its pinned namespaces, and an infra process when
    /// the containers share a PID namespace.
    /// Every step registers its undo; a failure runs them in reverse and leaves nothing behind.
    public func run(_ request: RunSandboxRequest) async throws(CrispError) -> Sandbox {
        let m = request.metadata
        guard !m.name.isEmpty, !m.namespace.isEmpty, !m.uid.isEmpty else {
            throw .invalidArgument("pod metadata needs name, namespace and uid (got name \"\(m.name)\", namespace \"\(m.namespace)\", uid \"\(m.uid)\")")
        }
        try ContainerLogPath.validateDirectory(request.logDirectory)
        let handler = try handler(named: request.runtimeHandler)
        let userns = try UserNamespacePolicy.validate(mode: request.userNamespaceMode, uids: request.uidMappings,
                                                      gids: request.gidMappings, hostNetwork: request.hostNetwork,
                                                      hostPID: request.hostPID, hostIPC: request.hostIPC)
        if userns != nil && !handler.userNamespaces {
            // Refused rather than run in the host's user namespace: the pod asked to be isolated.
            throw .failedPrecondition("pod \(m.namespace)/\(m.name) asks for its own user namespace, which runtime handler \(handler.name) does not support on this node (idmapped mounts failed the start-up probe); run it with hostUsers: true")
        }
        let (sysctls, skipped) = try PodSysctls.effective(pod: request.sysctls, defaults: settings.defaultSysctls,
                                                         hostNetwork: request.hostNetwork, hostIPC: request.hostIPC)
        if !skipped.isEmpty {
            logger.debug("default sysctls that do not fit this pod's namespaces left out",
                         metadata: ["name": "\(m.namespace)/\(m.name)", "left out": "\(skipped.joined(separator: ","))"])
        }
        if !request.hostNetwork {
            guard let network else {
                throw .failedPrecondition("pod \(m.namespace)/\(m.name) needs pod networking, which is not configured in this daemon")
            }
            let readiness = network.readiness
            guard readiness.ready else {
                throw .failedPrecondition("pod \(m.namespace)/\(m.name) needs pod networking: \(readiness.reason): \(readiness.message)")
            }
        }
        let id = SandboxID.random().rawValue
        // A replayed RunPodSandbox waits here for its twin, then finds the pod it made.
        reserving: while true {
            switch reservations.reserve(m.key, for: id) {
            case .reserved: break reserving
            case .taken(let existing):
                throw .alreadyExists("pod \(m.namespace)/\(m.name) (uid \(m.uid), attempt \(m.attempt)) already exists as \(existing)")
            case .wait: await withCheckedContinuation { reservations.enqueue(m.key, $0) }
            }
        }
        var undo: [() async -> Void] = [{ [m] in await self.finishReservation(m.key, keep: false) }]
        // CNI ADD, running beside the namespace pins and the infra container.
        var adding: Task<PodNetworkAttachment, any Error>?
        func rollback() async {
            _ = await adding?.result
            for u in undo.reversed() { await u() }
        }

        do throws(CrispError) {
            let runDir = settings.runRoot + "/sandboxes/" + id
            try make(directory: runDir)
            undo.append { try? FileManager.default.removeItem(atPath: runDir) }
            let hostname = request.hostname.isEmpty ? ProcessInfo.processInfo.hostName : request.hostname
            var sandbox = Sandbox(
                id: id, metadata: m, labels: request.labels, annotations: request.annotations,
                createdAt: Self.now(), state: .ready, runtimeHandler: handler.name, hostname: hostname,
                logDirectory: request.logDirectory, hostNetwork: request.hostNetwork, hostIPC: request.hostIPC,
                hostPID: request.hostPID, sharedPID: request.sharedPID, cgroupParent: request.cgroupParent,
                infraPID: 0, runDirectory: runDir, shmMounted: false)
            sandbox.sysctls = sysctls
            if let (uid, gid) = userns {
                guard host.canPinNamespaces else {
                    throw CrispError.failedPrecondition("pod \(m.namespace)/\(m.name) needs its own user namespace, but no namespace pinning helper is configured")
                }
                // First, so the pod's network, IPC and UTS namespaces are made inside it and owned by it.
                sandbox.usernsPath = try await host.pinUserNamespace(
                    name: "crisp-" + id, uidMap: "\(uid.containerID) \(uid.hostID) \(uid.length)",
                    gidMap: "\(gid.containerID) \(gid.hostID) \(gid.length)")
                undo.append { [host] in try? await host.unpinNamespaces(name: "crisp-" + id, kinds: [.user]) }
                sandbox.uidMap = uid
                sandbox.gidMap = gid
            }
            if request.privileged { sandbox.privileged = true }
            if settings.security.host.selinuxEnabled {
                sandbox.mcsLevel = try reserveMCSLevel(request.selinux?.level ?? "", pod: "\(m.namespace)/\(m.name)")
                undo.append { [mcs = settings.security.mcs, level = sandbox.mcsLevel!] in mcs.release(level) }
            }
            if !request.hostNetwork, let network {
                // The netns first; ADD then runs while the other namespaces are pinned and the infra
                // container starts in it (as the kubelet's dockershim did), which takes most of a
                // pod's set-up time off its critical path. A failed ADD undoes itself.
                let prepared = try await network.prepare(PodNetworkRequest(
                    pod: PodNetworkIdentity(id: id, name: m.name, namespace: m.namespace, uid: m.uid),
                    annotations: request.annotations, portMappings: request.portMappings, userNamespace: sandbox.usernsPath))
                undo.append { try? await network.tearDown(podID: id) }
                sandbox.netnsPath = prepared.netnsPath
                adding = Task { try await network.attach(prepared) }
            }
            if !request.hostIPC {
                try make(directory: sandbox.shmPath)
                try host.mountShm(at: sandbox.shmPath)
                sandbox.shmMounted = true
                undo.append { [host, path = sandbox.shmPath] in try? host.unmountShm(at: path) }
            }
            undo.append { try? FileManager.default.removeItem(atPath: self.recordsDirectory + "/" + id) }
            try await pinNamespaces(&sandbox, request: request, undo: &undo)
            if sandbox.hasInfra {
                try await startInfra(&sandbox, request: request, handler: handler, undo: &undo)
            }
            if let adding {
                sandbox.ips = try await Self.attachment(from: adding).ips
            }
            try writePodFiles(sandbox, request: request)
            try persist(sandbox)
            reservations.finish(m.key, keep: true)
            logger.info("pod started", metadata: ["pod": "\(id)", "name": "\(m.namespace)/\(m.name)",
                                                 "handler": "\(handler.name)", "infra": "\(sandbox.hasInfra)"])
            emit(.created, id)
            emit(.started, id)
            return sandbox
        } catch {
            logger.warning("pod start failed; rolled back", metadata: ["name": "\(m.namespace)/\(m.name)", "error": "\(error)"])
            await rollback()
            sandboxes[id] = nil
            throw error
        }
    }

    func finishReservation(_ key: String, keep: Bool) { reservations.finish(key, keep: keep) }

    static func attachment(from adding: Task<PodNetworkAttachment, any Error>) async throws(CrispError) -> PodNetworkAttachment {
        do { return try await adding.value } catch let e as CrispError { throw e } catch {
            throw CrispError(.internal, "pod network set-up failed", cause: error)
        }
    }

    /// IPC and UTS namespaces (the network one comes from CNI) pinned by crisp-pinns, so they
    /// outlive every container of the pod without a process holding them.
    func pinNamespaces(_ sandbox: inout Sandbox, request: RunSandboxRequest, undo: inout [() async -> Void]) async throws(CrispError) {
        var kinds: Set<PinnsNamespaces.Kind> = []
        if !request.hostIPC { kinds.insert(.ipc) }
        if !request.hostNetwork { kinds.insert(.uts) }
        guard !kinds.isEmpty else { return }
        guard host.canPinNamespaces else {
            throw .failedPrecondition("pod \(sandbox.metadata.namespace)/\(sandbox.metadata.name) needs its own IPC/UTS namespaces, but no namespace pinning helper is configured")
        }
        let id = sandbox.id
        let pins = try await host.pinNamespaces(name: "crisp-" + id, kinds: kinds, hostname: request.hostNetwork ? nil : sandbox.hostname,
                                               userNamespace: sandbox.usernsPath)
        undo.append { [host] in try? await host.unpinNamespaces(name: "crisp-" + id, kinds: kinds) }
        sandbox.ipcnsPath = pins[.ipc]
        sandbox.utsnsPath = pins[.uts]
    }

    /// The infra container: crisp's pause program, or `pause_image` when configured. It joins
    /// the pinned namespaces and holds the pod's PID namespace.
    func startInfra(_ sandbox: inout Sandbox, request: RunSandboxRequest, handler: RuntimeHandler,
                    undo: inout [() async -> Void]) async throws(CrispError) {
        let id = sandbox.id
        let m = sandbox.metadata
        let config = live?.current
        let pauseImage = config?.image.pauseImage ?? ""
        var rootfs: String
        var command = ["/pause"]
        // A pod with its own user namespace gets crisp's pause program, whose root filesystem
        // its mapped root can reach; the pause image's layers would need idmapping as well.
        if !pauseImage.isEmpty, let infraImages, sandbox.usernsPath == nil {
            let prepared = try await infraImages.prepare(image: pauseImage, podID: id)
            undo.append { await infraImages.release(podID: id) }
            sandbox.infraStorageID = id
            rootfs = prepared.rootfs
            let configured = config?.image.pauseCommand ?? ""
            command = configured.isEmpty ? prepared.command : [configured]
            guard !command.isEmpty else {
                throw .invalidArgument("pause image \(pauseImage) has no entrypoint or command and pause_command is empty")
            }
        } else {
            rootfs = try pauseRootfs()
            if sandbox.usernsPath != nil {
                for dir in [settings.root, settings.root + "/pause", rootfs] { try allowTraversal(dir) }
            }
        }
        var input = ContainerSpecInput(id: id, rootfs: rootfs)
        input.process.command = command
        input.security.readonlyRootfs = true
        input.security.dropCapabilities = ["ALL"]
        input.security.noNewPrivileges = true
        let decision = try settings.security.decide(seccomp: request.seccomp, appArmor: request.appArmor, selinux: request.selinux,
                                                    privileged: request.privileged, podLevel: sandbox.mcsLevel, logger: logger)
        input.security.seccomp = decision.seccomp
        input.security.appArmor = decision.appArmor
        input.security.selinux = decision.selinux
        input.defaults.securityHost = settings.security.host
        input.resources.oomScoreAdj = -998
        input.defaults.cgroupManager = settings.cgroupManager
        input.defaults.minimumOOMScoreAdj = settings.minimumOOMScoreAdj
        input.defaults.cgroupControllers = settings.cgroups.controllers
        input.sandbox.sysctls = sandbox.sysctls ?? [:]
        input.sandbox.hostNetwork = request.hostNetwork
        input.sandbox.networkNamespace = sandbox.netnsPath
        input.sandbox.hostIPC = request.hostIPC
        input.sandbox.ipcNamespace = sandbox.ipcnsPath
        input.sandbox.utsNamespace = sandbox.utsnsPath
        input.sandbox.hostPID = request.hostPID
        input.sandbox.hostname = sandbox.hostname
        input.sandbox.cgroupParent = request.cgroupParent
        input.sandbox.shmPath = sandbox.shmMounted ? sandbox.shmPath : nil
        input.sandbox.userNamespace = sandbox.usernsPath.map { ($0, sandbox.uidMap!, sandbox.gidMap!) }
        input.annotations = ["io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": id]
        let (spec, notes) = try SpecBuilder().build(input)
        settings.cgroupNotices.log(notes.leftOutResources, host: settings.cgroups, container: "infra of \(m.namespace)/\(m.name)",
                                   logger: logger)
        if let c = notes.clampedOOMScoreAdj, !oomClampLogged {
            // The kubelet asks for -998 on every pod; without CAP_SYS_RESOURCE the runtime cannot
            // set a negative value, so crisp clamps (as CRI-O does) and says so once.
            oomClampLogged = true
            logger.notice("oom_score_adj clamped to what this daemon may set (no CAP_SYS_RESOURCE); logged once",
                          metadata: ["requested": "\(c.requested)", "applied": "\(c.applied)"])
        }
        let bundle = settings.root + "/sandboxes/" + id + "/infra"
        var launch = ContainerLaunch(id: id, name: "k8s_POD_\(m.name)_\(m.namespace)_\(m.uid)_\(m.attempt)",
                                     handler: handler, bundle: bundle, logPath: sandbox.runDirectory + "/infra.log")
        launch.logSizeMax = 1 << 20
        undo.append { [runtime] in try? await runtime.delete(id: id, handler: handler) }
        let created = try await runtime.create(spec: spec, launch: launch)
        sandbox.infraPID = created.pid
        try await runtime.start(id: id, handler: handler)
    }

    static func now() -> Int64 {
        WallClock.nanoseconds()
    }

    func writePodFiles(_ s: Sandbox, request: RunSandboxRequest) throws(CrispError) {
        var resolv = ""
        if request.dnsServers.isEmpty && request.dnsSearches.isEmpty && request.dnsOptions.isEmpty {
            resolv = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        } else {
            if !request.dnsSearches.isEmpty { resolv += "search \(request.dnsSearches.joined(separator: " "))\n" }
            for server in request.dnsServers { resolv += "nameserver \(server)\n" }
            if !request.dnsOptions.isEmpty { resolv += "options \(request.dnsOptions.joined(separator: " "))\n" }
        }
        let hosts = s.ips.isEmpty ? """
            127.0.0.1\tlocalhost
            ::1\tlocalhost ip6-localhost ip6-loopback
            127.0.1.1\t\(s.hostname)

            """ : PodHostsFile.contents(hostname: s.hostname, podIPs: s.ips)
        for (path, text) in [(s.hostnamePath, s.hostname + "\n"), (s.hostsPath, hosts), (s.resolvConfPath, resolv)] {
            // Under runroot: they live until reboot, as the pod does, so they need no fsync.
            try AtomicFile.write(Data(text.utf8), to: path, mode: 0o644, durable: false)
        }
    }

    /// A read-only root filesystem holding only crisp's static pause program, shared by every
    /// infra container. Made once; replaced when the program changes.
    func pauseRootfs() throws(CrispError) -> String {
        let rootfs = settings.root + "/pause/rootfs"
        let target = rootfs + "/pause"
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: settings.pauseBinary) else {
            throw .failedPrecondition("crisp's pause program is missing at \(settings.pauseBinary) (build it with `make pause`)")
        }
        let want = (try? fm.attributesOfItem(atPath: settings.pauseBinary))?[.size] as? Int
        let have = (try? fm.attributesOfItem(atPath: target))?[.size] as? Int
        if want == nil || want != have {
            do {
                for d in ["", "/proc", "/sys", "/dev", "/etc"] { try fm.createDirectory(atPath: rootfs + d, withIntermediateDirectories: true) }
                let tmp = target + ".tmp"
                try? fm.removeItem(atPath: tmp)
                try fm.copyItem(atPath: settings.pauseBinary, toPath: tmp)
                try FileOperations.changeMode(tmp, to: 0o755)
                try FileOperations.rename(tmp, to: target)
            } catch {
                throw CrispError(.internal, "cannot prepare the pause root filesystem at \(rootfs): \(error)")
            }
        }
        return rootfs
    }

    /// A level the pod names must be free; otherwise a fresh one. Two pods sharing a level could
    /// read each other's files, so a taken one is refused.
    func reserveMCSLevel(_ asked: String, pod: String) throws(CrispError) -> String {
        let mcs = settings.security.mcs
        guard !asked.isEmpty else { return try mcs.reserve() }
        guard mcs.claim(asked) else {
            throw .alreadyExists("pod \(pod) asks for the SELinux level \(asked), which another pod holds")
        }
        return asked
    }
}
