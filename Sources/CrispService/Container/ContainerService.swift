public import CrispConfig
public import CrispCore
import CrispOS
public import CrispRuntime
public import CrispStorage
import Foundation
public import Logging

/// Containers: create, start, stop, remove, inspect, exec. One actor owns the registry (a cache
/// of the records on disk, rebuilt by `restore()`); each operation has its own file.
public actor ContainerService {
    let settings: SandboxService.Settings
    let runtime: any OCIRuntime
    let storage: Storage
    let sandboxes: SandboxService
    let logger: Logger
    public nonisolated let events: EventHub
    var containers: [String: ContainerRecord] = [:]
    /// Container name in its pod (`name_pod_attempt`) → container id, including creations in flight.
    var reservations = NameReservations()
    /// Start, stop, remove and update of one container run one at a time.
    let serializer = KeyedSerializer()
    var defaultCapabilities: [String]
    var pidsLimit: Int64
    /// `image_volumes`: mkdir (in the container's layer), bind (a directory of its own under the
    /// container's record, bind-mounted), or ignore.
    let imageVolumes: ImageVolumes
    /// `log_size_max`: conmon truncates a container's log file past this many bytes; -1 (or 0)
    /// means no limit.
    let logSizeMax: Int
    /// Reads stats from the hierarchies probed at start-up (`settings.cgroups`).
    let cgroups: CgroupReader
    /// The previous cgroup sample per container, for CPU rates.
    var lastSamples: [String: CgroupSample] = [:]
    var capabilityNoticeLogged = false
    /// `enable_criu_support`, and whether `criu check` has passed once.
    let criuEnabled: Bool
    var criuWorks = false

    public init(settings: SandboxService.Settings, config: CrispConfiguration, runtime: any OCIRuntime,
                storage: Storage, sandboxes: SandboxService, events: EventHub = EventHub(),
                logger: Logger) {
        self.settings = settings
        self.events = events
        self.runtime = runtime
        self.storage = storage
        self.sandboxes = sandboxes
        self.logger = logger
        defaultCapabilities = config.runtime.defaultCapabilities
        pidsLimit = Int64(config.runtime.pidsLimit)
        criuEnabled = config.runtime.enableCriuSupport
        imageVolumes = config.image.imageVolumes
        logSizeMax = config.runtime.logSizeMax
        cgroups = CgroupReader(host: settings.cgroups)
    }

    var recordsDirectory: String { settings.root + "/containers" }

    func persist(_ c: ContainerRecord) throws(CrispError) {
        do {
            try FileManager.default.createDirectory(atPath: "\(recordsDirectory)/\(c.id)", withIntermediateDirectories: true)
        } catch {
            throw CrispError(.internal, "cannot create container directory for \(c.id): \(error.localizedDescription)")
        }
        try Bundle.writeJSON(c, to: "\(recordsDirectory)/\(c.id)/container.json", durable: settings.durableRecords)
        containers[c.id] = c
    }

    func lookup(_ idOrPrefix: String) throws(CrispError) -> ContainerRecord {
        try CrispService.lookup(idOrPrefix, in: containers, kind: "container")
    }

    func handler(_ name: String) throws(CrispError) -> RuntimeHandler {
        guard let h = settings.handlers[name] else { throw .invalidArgument("unknown runtime handler \"\(name)\"") }
        return h
    }

    public func status(_ id: String) throws(CrispError) -> ContainerRecord { try lookup(id) }

    public func list(_ filter: ContainerFilter) -> [ContainerRecord] {
        containers.values.filter(filter.matches).sorted { $0.createdAt < $1.createdAt }
    }

    /// conmon recorded an exit: the container is exited with that code.
    public func exited(_ exit: ContainerExit) {
        guard var c = containers[exit.id] else { return }
        let started: Int64
        switch c.lifecycle {
        case .running(_, let s): started = s
        case .created: started = 0
        case .exited: return
        }
        let finished = Int64(exit.at.timeIntervalSince1970 * 1_000_000_000)
        let oom = FileManager.default.fileExists(atPath: c.bundle + "/oom")
        let reason = oom ? "OOMKilled" : (exit.exitCode == 0 ? "Completed" : "Error")
        c.lifecycle = .exited(exitCode: exit.exitCode, startedAt: started, finishedAt: finished, reason: reason)
        try? persist(c)
        emit(.stopped, c)
    }

    func emit(_ kind: LifecycleEvent.Kind, _ c: ContainerRecord) {
        events.emit(LifecycleEvent(kind: kind, id: c.id, sandboxID: c.sandboxID, isSandbox: false, at: SandboxService.now()))
    }

    /// Container ids of a pod, for StopPodSandbox and RemovePodSandbox.
    public func ids(inSandbox sandboxID: String) -> [String] {
        containers.values.filter { $0.sandboxID == sandboxID }.map(\.id)
    }

    /// Loads the records, and removes what creates a crash cut short left behind: a record
    /// directory without its record (the bundle and maybe a runtime container under conmon were
    /// made, the record not yet written), and storage containers no record names. Runs before
    /// crispd serves, so no create is in flight.
    public func restore(exits: ExitTracker) async {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: recordsDirectory)) ?? []
        var interrupted: Set<String> = []
        for id in names {
            guard let data = FileManager.default.contents(atPath: "\(recordsDirectory)/\(id)/container.json"),
                  let c = try? JSONDecoder().decode(ContainerRecord.self, from: data) else {
                interrupted.insert(id)
                continue
            }
            containers[c.id] = c
            reservations.restore(c.reservationKey, for: c.id)
            if let e = await exits.exit(of: c.id) { exited(e) }
        }
        let stored = try? await storage.containers()
        // The pods' infra containers are the sandbox service's own.
        for s in stored ?? [] where containers[s.id.rawValue] == nil && !s.name.hasPrefix("k8s_POD_infra_") {
            interrupted.insert(s.id.rawValue)
        }
        // Storage drops a container whose layer did not reach the disk before a power cut (it
        // cannot happen under storage_sync = filesystem). The record stays, so that the kubelet
        // sees the container and removes it; starting it fails.
        if let stored {
            let storedIDs = Set(stored.map(\.id.rawValue))
            for c in containers.values where !storedIDs.contains(c.id) {
                logger.warning("container storage lost: the record remains, its root filesystem is gone; it can be removed, not started",
                               metadata: ["container": "\(c.id)", "name": "\(c.name)"])
            }
        }
        for id in interrupted.sorted() { await discardInterruptedCreate(id) }
        if !containers.isEmpty { logger.info("restored containers", metadata: ["count": "\(containers.count)"]) }
    }

    /// Everything a create may have made for `id`: the runtime's container (whichever handler
    /// made it; deleting kills its process, and conmon then exits), the root filesystem, the
    /// record directory and an exit file.
    func discardInterruptedCreate(_ id: String) async {
        for handler in settings.handlers.values { try? await runtime.delete(id: id, handler: handler) }
        unmountIdmappedRootfs(id)
        if let cid = try? ContainerID(parsing: id) {
            _ = try? await storage.unmountContainer(cid, force: true)
            try? await storage.removeContainer(cid)
        }
        try? FileManager.default.removeItem(atPath: "\(recordsDirectory)/\(id)")
        try? FileManager.default.removeItem(atPath: settings.exitDirectory + "/" + id)
        logger.notice("removed what an interrupted CreateContainer left", metadata: ["container": "\(id)"])
    }
}
