public import CrispCore
public import Logging

/// Where the pod network manager finds and keeps things (from `[crisp.network]` plus the
/// daemon's root).
public struct PodNetworkOptions: Sendable {
    public var networkDir: String
    public var pluginDirs: [String]
    /// `cni_default_network`; empty means the first config by file name.
    public var defaultNetwork: String
    /// The result cache, e.g. `<root>/cni/results`. Must survive restarts.
    public var cacheDir: String
    public var ifName: String = "eth0"
    public var pluginTimeout: Duration = .seconds(60)

    public init(networkDir: String, pluginDirs: [String], defaultNetwork: String = "", cacheDir: String) {
        self.networkDir = networkDir
        self.pluginDirs = pluginDirs
        self.defaultNetwork = defaultNetwork
        self.cacheDir = cacheDir
    }
}

/// What setUp needs to know about a (non-host-network) pod.
public struct PodNetworkRequest: Sendable {
    public var pod: PodNetworkIdentity
    public var annotations: [String: String]
    public var portMappings: [PortMapping]
    /// The pod's own user namespace (pinned), which then owns its network namespace.
    public var userNamespace: String?

    public init(pod: PodNetworkIdentity, annotations: [String: String] = [:], portMappings: [PortMapping] = [],
                userNamespace: String? = nil) {
        self.userNamespace = userNamespace
        self.pod = pod
        self.annotations = annotations
        self.portMappings = portMappings
    }
}

/// A pod's network as ADD left it: the pinned netns and the addresses for PodSandboxStatus.
public struct PodNetworkAttachment: Sendable, Equatable {
    public var podID: String
    public var netnsPath: String
    public var networkName: String
    /// Pod IPs, IPv4 first: the first is PodSandboxStatus.network.ip, the rest additional_ips.
    public var ips: [String]
    public var result: CNIResult

    public var ipv4: String? { ips.first { !$0.contains(":") } }
    public var ipv6: String? { ips.first { $0.contains(":") } }
}

/// A pod's netns, made by `PodNetworkManager.prepare`, with the network its ADD will use.
public struct PreparedPodNetwork: Sendable {
    let request: PodNetworkRequest
    let network: CNINetworkConfigList
    let capabilityArgs: [String: JSONValue]
    public let netnsPath: String
    /// Set when the pod was already attached: `attach` then returns it.
    let attached: PodNetworkAttachment?
}

/// Pod networking for the sandbox service: a pinned netns per pod, CNI ADD/DEL with the result
/// cache, and NetworkReady from a watched config directory. Host-network pods must not be passed
/// here. All methods are safe to call concurrently; calls for the same pod are serialized.
public final class PodNetworkManager: Sendable {
    public let options: PodNetworkOptions
    public let watcher: CNIConfigWatcher
    public let runner: CNIChainRunner
    public let cache: CNIResultCache
    public let namespaces: any NetworkNamespaceProvider
    let logger: Logger
    let serializer = KeyedSerializer()

    public init(options: PodNetworkOptions, executor: any CNIExecutor = ProcessCNIExecutor(),
                namespaces: any NetworkNamespaceProvider, logger: Logger) {
        self.options = options
        self.logger = logger
        self.namespaces = namespaces
        self.watcher = CNIConfigWatcher(
            loader: CNIConfigLoader(directory: options.networkDir, defaultNetworkName: options.defaultNetwork),
            logger: logger)
        self.runner = CNIChainRunner(executor: executor, pluginDirs: options.pluginDirs,
                                     timeout: options.pluginTimeout, logger: logger)
        self.cache = CNIResultCache(directory: options.cacheDir)
    }

    /// Starts watching the config directory (creating it when missing).
    public func start() throws(CrispError) { try watcher.start() }

    /// Stops the watcher. Pods keep their networks.
    public func stop() { watcher.stop() }

    /// NetworkReady for the CRI Status call: live, from the watched directory.
    public var readiness: NetworkReadiness { watcher.readiness }

    public func readinessUpdates() -> AsyncStream<NetworkReadiness> { watcher.readinessUpdates() }

    /// The netns pin name of a pod.
    public func netnsName(podID: String) -> String { "crisp-" + podID }

    /// The path of a pod's pinned netns (for the OCI spec's network namespace and port dial).
    public func netnsPath(podID: String) -> String { namespaces.path(for: netnsName(podID: podID)) }

    /// Creates and pins the pod's netns (loopback up), runs CNI ADD of the default network and
    /// caches what it used. On any failure everything done is undone (DEL of the whole list, netns
    /// removed, cache entry removed) and the first error is thrown. Calling it again for a pod
    /// that is set up returns the cached attachment.
    public func setUp(_ request: PodNetworkRequest) async throws(CrispError) -> PodNetworkAttachment {
        try CNIResultCache.checkName(request.pod.id)
        return try await serializer.exclusively(request.pod.id) { () async throws(CrispError) -> PodNetworkAttachment in
            try await attachLocked(try await prepareLocked(request))
        }
    }

    /// `setUp` in two halves, so that a caller can use the netns while ADD runs (the infra
    /// container joins it meanwhile). `prepare` creates the netns; `attach` runs ADD in it and on
    /// failure undoes both. A caller that gives up between the two calls `tearDown`.
    public func prepare(_ request: PodNetworkRequest) async throws(CrispError) -> PreparedPodNetwork {
        try CNIResultCache.checkName(request.pod.id)
        return try await serializer.exclusively(request.pod.id) { () async throws(CrispError) -> PreparedPodNetwork in
            try await prepareLocked(request)
        }
    }

    public func attach(_ prepared: PreparedPodNetwork) async throws(CrispError) -> PodNetworkAttachment {
        try await serializer.exclusively(prepared.request.pod.id) { () async throws(CrispError) -> PodNetworkAttachment in
            try await attachLocked(prepared)
        }
    }

    /// Runs CNI DEL with the cached config and result (whatever the config directory holds now),
    /// then removes the netns and the cache entry. A pod without an entry only has its netns
    /// removed; calling it twice is fine. When DEL fails nothing is removed, so it can be retried.
    public func tearDown(podID: String) async throws(CrispError) {
        try CNIResultCache.checkName(podID)
        await serializer.acquire(podID)
        do {
            try await tearDownLocked(podID: podID)
            await serializer.release(podID)
        } catch {
            await serializer.release(podID)
            throw error
        }
    }

    /// The cached attachment of a pod (for restore and PodSandboxStatus), nil when it has none.
    public func attachment(podID: String) throws(CrispError) -> PodNetworkAttachment? {
        guard let e = try cache.load(podID: podID), let doc = e.result else { return nil }
        return try attachment(e, doc)
    }

    /// Runs CNI CHECK with the cached config and result (for recovery after a restart).
    public func check(podID: String) async throws(CrispError) {
        guard let e = try cache.load(podID: podID), let doc = e.result else {
            throw .notFound("pod \(podID) has no CNI attachment")
        }
        try await runner.check(try e.network(), e.runtime, prevResult: doc)
    }

    func attachment(_ e: CNICacheEntry, _ doc: JSONValue) throws(CrispError) -> PodNetworkAttachment {
        let r = try CNIResult(document: doc, plugin: "cache of pod \(e.pod.id)")
        return PodNetworkAttachment(podID: e.pod.id, netnsPath: e.runtime.netnsPath, networkName: e.networkName,
                                    ips: r.podIPs, result: r)
    }
}
