public import CrispCore
import CrispOCI
import CrispOS
import CrispSecurity
import CrispRuntime
import CrispStorage
import CrispConfig
import Foundation
import Logging

extension ContainerService {
    /// Creates a container in a ready pod: a read-write layer on the image, an OCI bundle, and
    /// the container process under conmon (created, not started). Rolls back on any failure.
    public func create(_ r: CreateContainerRequest) async throws(CrispError) -> ContainerRecord {
        guard !r.name.isEmpty else { throw .invalidArgument("container metadata needs a name") }
        guard !r.image.isEmpty else { throw .invalidArgument("container \(r.name) names no image") }
        let pod = try await sandboxes.status(r.sandboxID)
        guard pod.state == .ready else { throw .failedPrecondition("pod \(pod.id) is not ready; cannot create container \(r.name) in it") }
        let key = "\(r.name)_\(pod.id)_\(r.attempt)"
        let id = ContainerID.random()
        // Resolved (or refused) before any work.
        let logPath = try ContainerLogPath.resolve(r.logPath, podLogDirectory: pod.logDirectory,
                                                   ownDirectory: "\(recordsDirectory)/\(id.rawValue)")
        // Reserved before the next suspension; a replayed CreateContainer waits for its twin.
        reserving: while true {
            switch reservations.reserve(key, for: id.rawValue) {
            case .reserved: break reserving
            case .taken(let existing):
                throw .alreadyExists("container \(r.name) (attempt \(r.attempt)) already exists in pod \(pod.id) as \(existing)")
            case .wait: await withCheckedContinuation { reservations.enqueue(key, $0) }
            }
        }
        var undo: [() async -> Void] = [{ await self.finishReservation(key, keep: false) }]
        do {
            var restore: RestoreSource?
            if r.image.hasPrefix("/") {
                undo.append { try? FileManager.default.removeItem(atPath: "\(self.recordsDirectory)/\(id.rawValue)") }
                restore = try await unpackCheckpoint(r.image, id: id, name: r.name, mounts: r.mounts.map(\.containerPath))
            }
            let image = try await findImage(restore?.baseImage ?? r.image)
            let handler = try handler(pod.runtimeHandler)
            _ = try await storage.createContainer(CreateContainerOptions(id: id, name: "\(r.name)-\(id.short)", imageID: image.id))
            undo.append { [storage] in try? await storage.removeContainer(id) }
            let rootfs: String
            if pod.usernsPath != nil {
                rootfs = try await mountIdmappedRootfs(id, pod: pod)
                undo.append { await self.unmountIdmappedRootfs(id.rawValue) }
            } else {
                rootfs = try await storage.mountContainer(id)
                undo.append { [storage] in _ = try? await storage.unmountContainer(id, force: true) }
            }
            undo.append { try? FileManager.default.removeItem(atPath: "\(self.recordsDirectory)/\(id.rawValue)") }
            // An unreadable config means no defaults from the image; the request must then say it all.
            let config = (try? JSONDecoder().decode(ImageConfiguration.self, from: Data(image.config)))?.config
            var input = ContainerSpecInput(id: id.rawValue, rootfs: rootfs)
            input.image.entrypoint = config?.entrypoint ?? []
            input.image.cmd = config?.cmd ?? []
            input.image.env = config?.env ?? []
            input.image.workingDir = config?.workingDir ?? ""
            input.image.user = config?.user ?? ""
            input.process.command = r.command
            input.process.args = r.args
            input.process.env = r.env
            input.process.workingDir = r.workingDir
            input.process.tty = r.tty
            input.process.stdin = r.stdin
            input.mounts = r.mounts
            try Self.checkPropagation(r.mounts) { readSmallFile("/proc/self/mountinfo") }
            input.devices = try Self.resolveDevices(r.devices)
            let volumes = (config?.volumes.map { Array($0.keys) } ?? []).filter { v in !r.mounts.contains { $0.containerPath == v } }
            switch imageVolumes {
            case .ignore: break
            case .bind:
                for (i, v) in volumes.sorted().enumerated() {
                    let host = "\(recordsDirectory)/\(id.rawValue)/volumes/\(i)"
                    try make(directory: host)
                    input.mounts.append(.init(containerPath: v, hostPath: host))
                }
            case .mkdir:
                try Self.makeVolumeDirectories(volumes, rootfs: rootfs, except: [])
            }
            input.security = ContainerSpecInput.SecurityRequest(r.security)
            input.resources = r.resources
            let staged = try await stageIdmappedVolumes(&input.mounts, id: id, pod: pod)
            // The runtime has its own copies once create returns (or failed); none is left behind.
            defer { for path in staged { try? Mounts.unmount(path, detach: true) } }
            let decision = try settings.security.decide(seccomp: r.seccomp, appArmor: r.appArmor, selinux: r.selinux,
                                                        privileged: r.security.privileged, podLevel: pod.mcsLevel, logger: logger)
            input.security.seccomp = decision.seccomp
            input.security.appArmor = decision.appArmor
            input.security.selinux = decision.selinux
            if let labels = decision.selinux {
                for m in input.mounts where m.selinuxRelabel { try Self.relabel(m, label: labels.mount) }
            }
            input.defaults.securityHost = settings.security.host
            if r.security.privileged {
                // Privileged means the host's devices too, as CRI-O gives them; ones the request
                // names keep their own path and permissions.
                let asked = Set(input.devices.map(\.containerPath))
                input.devices += Self.hostDevices().filter { !asked.contains($0.containerPath) }
            }
            input.defaults.capabilities = defaultCapabilities
            input.defaults.cgroupManager = settings.cgroupManager
            input.defaults.minimumOOMScoreAdj = settings.minimumOOMScoreAdj
            input.defaults.boundingCapabilities = settings.boundingCapabilities
            input.defaults.recursiveReadOnlySupported = handler.recursiveReadOnlyMounts
            input.defaults.pidsLimit = pidsLimit
            input.defaults.cgroupControllers = settings.cgroups.controllers
            input.sandbox = sandboxContext(pod)
            input.annotations = r.annotations.merging(["io.kubernetes.cri.container-type": "container",
                                                       "io.kubernetes.cri.sandbox-id": pod.id]) { $1 }
            input.passwd = Self.readImageFile(rootfs: rootfs, path: "etc/passwd")
            input.group = Self.readImageFile(rootfs: rootfs, path: "etc/group")
            let (spec, notes) = try SpecBuilder().build(input)
            settings.cgroupNotices.log(notes.leftOutResources, host: settings.cgroups, container: r.name, logger: logger)
            if !notes.unavailableCapabilities.isEmpty && !capabilityNoticeLogged {
                capabilityNoticeLogged = true
                logger.notice("capabilities outside crispd's own bounding set are left out of containers; logged once",
                              metadata: ["container": "\(r.name)", "left out": "\(notes.unavailableCapabilities.joined(separator: ","))"])
            }

            let bundle = "\(recordsDirectory)/\(id.rawValue)/bundle"
            try? FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
            let options = launch(id: id.rawValue, name: r.name, attempt: r.attempt, pod: pod, handler: handler, bundle: bundle,
                                        logPath: logPath, stdin: r.stdin, stdinOnce: r.stdinOnce, terminal: r.tty)
            undo.append { [runtime] in try? await runtime.delete(id: id.rawValue, handler: handler) }
            let createdPID: Int32?
            if restore != nil {
                // Its processes come back at StartContainer, from the CRIU images; only the bundle now.
                try Bundle.write(spec: spec, to: bundle)
                createdPID = nil
            } else {
                createdPID = try await runtime.create(spec: spec, launch: options).pid
            }
            let processJSON = (try? JSONEncoder().encode(spec.process)) ?? Data()
            var record = ContainerRecord(
                id: id.rawValue, sandboxID: pod.id, name: r.name, attempt: r.attempt, image: r.image,
                imageID: image.id.description, labels: r.labels, annotations: r.annotations,
                createdAt: SandboxService.now(), lifecycle: .created, logPath: logPath, runtimeHandler: handler.name,
                stopSignal: Signal(named: config?.stopSignal ?? ""), bundle: bundle, processJSON: processJSON,
                mounts: r.mounts.map { .init(containerPath: $0.containerPath, hostPath: $0.hostPath, readonly: $0.readonly,
                                                  propagation: $0.propagation,
                                                  recursiveReadOnly: $0.recursiveReadOnly ? true : nil) },
                createdPID: createdPID,
                resources: ContainerRecord.Resources(applied: spec.linux?.resources,
                                                     oomScoreAdj: spec.process?.oomScoreAdj ?? r.resources.oomScoreAdj))
            record.stdin = r.stdin
            record.userSpecifiedImage = r.userSpecifiedImage.isEmpty ? nil : r.userSpecifiedImage
            record.stdinOnce = r.stdinOnce
            record.security = .init(seccompProfile: spec.linux?.seccomp == nil ? "Unconfined" : decision.seccomp.name,
                                    appArmorProfile: spec.process?.apparmorProfile ?? "",
                                    selinuxLabel: spec.process?.selinuxLabel ?? "", privileged: r.security.privileged)
            if pod.usernsPath != nil { record.idmappedRootfs = true }
            record.restoreFrom = restore?.directory
            try persist(record)
            reservations.finish(key, keep: true)
            emit(.created, record)
            logger.info("container created", metadata: ["container": "\(id)", "pod": "\(pod.id)", "name": "\(r.name)"])
            return record
        } catch {
            for u in undo.reversed() { await u() }
            throw error as? CrispError ?? CrispError(.internal, "creating container \(r.name) failed: \(error)")
        }
    }

    func finishReservation(_ key: String, keep: Bool) { reservations.finish(key, keep: keep) }

    /// What the runtime launches for a container, as create and a restore from a checkpoint both need it.
    func launch(id: String, name: String, attempt: UInt32, pod: Sandbox, handler: RuntimeHandler, bundle: String,
                logPath: String, stdin: Bool, stdinOnce: Bool, terminal: Bool) -> ContainerLaunch {
        var options = ContainerLaunch(id: id, name: "k8s_\(name)_\(pod.metadata.name)_\(pod.metadata.namespace)_\(pod.metadata.uid)_\(attempt)",
                                      handler: handler, bundle: bundle, logPath: logPath)
        options.logSizeMax = logSizeMax
        options.stdin = stdin
        options.stdinOnce = stdinOnce
        options.terminal = terminal
        return options
    }

    func findImage(_ reference: String) async throws(CrispError) -> CrispStorage.Image {
        do {
            if let d = try? Digest(parsing: reference.hasPrefix("sha256:") ? reference : "sha256:" + reference),
               let image = try await storage.image(d) {
                return image
            }
            for name in Self.candidateNames(reference) {
                if let image = try await storage.image(named: name) { return image }
            }
        } catch let e as CrispError {
            throw e
        } catch {
            throw CrispError(.internal, "looking up image \(reference) failed", cause: error)
        }
        throw .notFound("image \"\(reference)\" is not present; pull it first")
    }

    /// `busybox` → `docker.io/library/busybox:latest` and the name as given.
    static func candidateNames(_ reference: String) -> [String] {
        var name = reference
        let lastComponent = name.split(separator: "/").last ?? ""
        if !lastComponent.contains(":") && !name.contains("@") { name += ":latest" }
        let first = name.split(separator: "/").first.map(String.init) ?? ""
        let hasDomain = name.contains("/") && (first.contains(".") || first.contains(":") || first == "localhost")
        var out = [reference, name]
        if !hasDomain { out.append(name.contains("/") ? "docker.io/" + name : "docker.io/library/" + name) }
        return out
    }

    func sandboxContext(_ pod: Sandbox) -> ContainerSpecInput.SandboxContext {
        var s = ContainerSpecInput.SandboxContext()
        s.hostNetwork = pod.hostNetwork
        s.hostIPC = pod.hostIPC
        s.hostPID = pod.hostPID
        s.networkNamespace = pod.hostNetwork ? nil : pod.netnsPath
        s.ipcNamespace = pod.hostIPC ? nil : pod.ipcnsPath
        s.utsNamespace = pod.hostNetwork ? nil : pod.utsnsPath
        s.pidNamespace = pod.sharedPID && pod.infraPID > 0 ? "/proc/\(pod.infraPID)/ns/pid" : nil
        s.hostname = pod.hostname
        s.hostsFile = pod.hostsPath
        s.hostnameFile = pod.hostnamePath
        s.resolvConf = pod.resolvConfPath
        s.shmPath = pod.shmMounted ? pod.shmPath : nil
        s.cgroupParent = pod.cgroupParent
        s.sysctls = pod.sysctls ?? [:]
        if let path = pod.usernsPath, let uid = pod.uidMap, let gid = pod.gidMap { s.userNamespace = (path, uid, gid) }
        return s
    }

    /// Reads a small file of the image through RESOLVE_IN_ROOT, so a symlink in the image cannot
    /// point the daemon at the host's files.
    static func readImageFile(rootfs: String, path: String) -> String? {
        guard let root = try? SafeRoot(path: rootfs) else { return nil }
        return root.readSmallFile(path)
    }
}
