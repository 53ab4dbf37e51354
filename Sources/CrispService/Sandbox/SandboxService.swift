public import CrispConfig
public import CrispCore
import CrispOS
public import CrispRuntime
import Foundation
public import Logging
public import CrispNetwork
public import CrispSecurity

/// Pods: create, stop, remove, inspect. One actor owns the in-memory registry (a cache of the
/// records on disk, rebuilt by `restore()`); each operation lives in `SandboxService+Op.swift`.
public actor SandboxService {
    public struct Settings: Sendable {
        public var root: String
        public var runRoot: String
        public var handlers: [String: RuntimeHandler]
        public var defaultHandler: String
        public var cgroupManager: CgroupManager
        /// crisp's static pause program, copied into the infra root filesystem.
        public var pauseBinary: String
        public var exitDirectory: String
        public var minimumOOMScoreAdj: Int
        /// The daemon's capability bounding set (CAP_ names); nil means all.
        public var boundingCapabilities: [String]?
        public var defaultSysctls: [String: String]
        /// Pod and container records are fsynced only with `storage_sync = filesystem`; the
        /// write-and-rename keeps them whole across a crashed daemon either way.
        public var durableRecords: Bool
        /// This host's cgroup hierarchies, probed at start-up: limits they cannot take are left
        /// out of every spec.
        public var cgroups: CgroupHost
        /// Which left-out limits were logged; shared by the services built from these settings.
        public var cgroupNotices = CgroupNotices()
        /// Seccomp, AppArmor and SELinux: configuration and host facts.
        public var security: SecuritySettings

        /// The configured runtime handlers, before their features are probed.
        public static func handlers(from config: CrispConfiguration) -> [String: RuntimeHandler] {
            Dictionary(uniqueKeysWithValues: config.runtime.runtimes.map { name, h in
                (name, RuntimeHandler(name: name, path: h.runtimePath, root: h.runtimeRoot,
                                      systemdCgroup: config.runtime.cgroupManager == .systemd))
            })
        }

        public init(config: CrispConfiguration, pauseBinary: String, minimumOOMScoreAdj: Int,
                    boundingCapabilities: [String]? = nil, cgroups: CgroupHost = .detect(),
                    security: SecuritySettings? = nil) {
            self.cgroups = cgroups
            self.security = security ?? SecuritySettings(host: SecurityHost(machine: ""),
                                                         seccompUseDefaultWhenEmpty: config.runtime.seccompUseDefaultWhenEmpty,
                                                         appArmorDefault: config.runtime.appArmorProfile)
            root = config.root
            runRoot = config.runRoot
            handlers = Self.handlers(from: config)
            defaultHandler = config.runtime.defaultRuntime
            cgroupManager = config.runtime.cgroupManager
            self.pauseBinary = pauseBinary
            exitDirectory = config.runRoot + "/exits"
            self.minimumOOMScoreAdj = minimumOOMScoreAdj
            self.boundingCapabilities = boundingCapabilities
            durableRecords = config.storageSync == .filesystem
            defaultSysctls = Dictionary(config.runtime.defaultSysctls.compactMap { s in
                let p = s.split(separator: "=", maxSplits: 1).map(String.init)
                return p.count == 2 ? (p[0], p[1]) : nil
            }, uniquingKeysWith: { $1 })
        }
    }

    let settings: Settings
    let runtime: any OCIRuntime
    /// nil only in tests that run host-network pods without CNI.
    let network: PodNetworkManager?
    /// /dev/shm mounts and namespace pins.
    nonisolated let host: any PodHost
    /// crisp-pinns, for what only it does: idmapped mounts and entering a pod's network
    /// namespace to forward a port. nil when it is not configured.
    nonisolated let namespaces: PinnsNamespaces?
    /// Supplies the infra root filesystem when `pause_image` is set.
    let infraImages: (any InfraImageSource)?
    let live: LiveConfiguration?
    public nonisolated let events: EventHub
    let logger: Logger
    var sandboxes: [String: Sandbox] = [:]
    /// Metadata key → sandbox id, including pods still being created.
    var reservations = NameReservations()
    /// Stop and remove of one pod run one at a time.
    let serializer = KeyedSerializer()
    var oomClampLogged = false

    /// `host` defaults to the real one, pinning with `namespaces`.
    public init(settings: Settings, runtime: any OCIRuntime, network: PodNetworkManager?,
                namespaces: PinnsNamespaces?, host: (any PodHost)? = nil, infraImages: (any InfraImageSource)? = nil,
                live: LiveConfiguration? = nil, events: EventHub = EventHub(), logger: Logger) {
        self.settings = settings
        self.runtime = runtime
        self.network = network
        self.namespaces = namespaces
        self.host = host ?? SystemPodHost(pinns: namespaces)
        self.infraImages = infraImages
        self.live = live
        self.events = events
        self.logger = logger
    }

    func emit(_ kind: LifecycleEvent.Kind, _ id: String) {
        events.emit(LifecycleEvent(kind: kind, id: id, sandboxID: id, isSandbox: true, at: Self.now()))
    }

    var recordsDirectory: String { settings.root + "/sandboxes" }
    func recordPath(_ id: String) -> String { "\(recordsDirectory)/\(id)/sandbox.json" }

    func persist(_ s: Sandbox) throws(CrispError) {
        do {
            try FileManager.default.createDirectory(atPath: "\(recordsDirectory)/\(s.id)", withIntermediateDirectories: true)
        } catch {
            throw CrispError(.internal, "cannot create sandbox directory for \(s.id): \(error.localizedDescription)")
        }
        try Bundle.writeJSON(s, to: recordPath(s.id), durable: settings.durableRecords)
        sandboxes[s.id] = s
    }

    func handler(named name: String) throws(CrispError) -> RuntimeHandler {
        let n = name.isEmpty ? settings.defaultHandler : name
        guard let h = settings.handlers[n] else {
            throw .invalidArgument("unknown runtime handler \"\(n)\" (configured: \(settings.handlers.keys.sorted().joined(separator: ", ")))")
        }
        return h
    }

    /// Finds a pod by full id or unique id prefix.
    func lookup(_ idOrPrefix: String) throws(CrispError) -> Sandbox {
        try CrispService.lookup(idOrPrefix, in: sandboxes, kind: "pod sandbox")
    }

    /// The infra process exited (killed, or it crashed): the pod is no longer ready.
    public func infraExited(_ exit: ContainerExit) {
        guard var s = sandboxes[exit.id], s.hasInfra, s.state == .ready else { return }
        s.state = .notReady
        logger.info("pod infra process exited", metadata: ["pod": "\(exit.id)", "code": "\(exit.exitCode)"])
        try? persist(s)
        emit(.stopped, s.id)
    }

    public func status(_ id: String) throws(CrispError) -> Sandbox { try lookup(id) }

    public func list(_ filter: SandboxFilter) -> [Sandbox] {
        sandboxes.values.filter(filter.matches).sorted { $0.createdAt < $1.createdAt }
    }
}
