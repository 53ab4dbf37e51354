import CrispConfig
import CrispCore
public import CrispRuntime
import Foundation
public import CrispNetwork

/// One condition of the runtime as the CRI `Status` call reports it.
public struct RuntimeCondition: Sendable, Equatable {
    public static let runtimeReady = "RuntimeReady"
    public static let networkReady = "NetworkReady"

    public var type: String
    public var status: Bool
    public var reason: String
    public var message: String

    public init(type: String, status: Bool, reason: String = "", message: String = "") {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

/// Answers what the daemon is and whether it is ready. Reads the live configuration on every
/// call so that a SIGHUP reload is seen at once.
public struct RuntimeInfoService: Sendable {
    public let config: LiveConfiguration
    let network: PodNetworkManager?
    /// The configured handlers with what each supports (probed once at start-up).
    public let handlers: [RuntimeHandler]

    public init(config: LiveConfiguration, network: PodNetworkManager? = nil, handlers: [RuntimeHandler] = []) {
        self.config = config
        self.network = network
        self.handlers = handlers
    }

    /// Handlers for Status: each by name, and the default one once more under the empty name,
    /// which is how the kubelet names "no RuntimeClass".
    public var advertisedHandlers: [AdvertisedHandler] {
        let byName = handlers.sorted { $0.name < $1.name }.map {
            AdvertisedHandler(name: $0.name, recursiveReadOnlyMounts: $0.recursiveReadOnlyMounts, userNamespaces: $0.userNamespaces)
        }
        let defaultName = config.current.runtime.defaultRuntime
        guard var d = byName.first(where: { $0.name == defaultName }) else { return byName }
        d.name = ""
        return [d] + byName
    }

    /// The effective configuration as JSON, for verbose Status (crictl parses it).
    public func configurationJSON() -> String { config.current.json() }

    public enum CgroupDriver: Sendable { case cgroupfs, systemd }

    public var cgroupDriver: CgroupDriver {
        config.current.runtime.cgroupManager == .systemd ? .systemd : .cgroupfs
    }

    public func conditions() -> [RuntimeCondition] {
        let c = config.current
        return [runtimeCondition(c), networkCondition(c)]
    }

    /// The runtime is ready when the default handler's binary and conmon can be executed.
    func runtimeCondition(_ c: CrispConfiguration) -> RuntimeCondition {
        let handler = c.runtime.runtimes[c.runtime.defaultRuntime]
        let path = handler?.runtimePath ?? ""
        if path.isEmpty || !FileManager.default.isExecutableFile(atPath: path) {
            return RuntimeCondition(type: RuntimeCondition.runtimeReady, status: false, reason: "RuntimeBinaryMissing",
                                    message: "runtime \"\(c.runtime.defaultRuntime)\" binary \"\(path)\" is not executable")
        }
        if !FileManager.default.isExecutableFile(atPath: c.runtime.conmon) {
            return RuntimeCondition(type: RuntimeCondition.runtimeReady, status: false, reason: "ConmonMissing",
                                    message: "conmon \"\(c.runtime.conmon)\" is not executable")
        }
        return RuntimeCondition(type: RuntimeCondition.runtimeReady, status: true)
    }

    /// From the CNI manager's inotify-fed status when there is one; otherwise a file check.
    func networkCondition(_ c: CrispConfiguration) -> RuntimeCondition {
        if let r = network?.readiness {
            return RuntimeCondition(type: RuntimeCondition.networkReady, status: r.ready, reason: r.reason, message: r.message)
        }
        let dir = c.network.networkDir
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let configs = names.filter { $0.hasSuffix(".conflist") || $0.hasSuffix(".conf") || $0.hasSuffix(".json") }
        if configs.isEmpty {
            return RuntimeCondition(type: RuntimeCondition.networkReady, status: false, reason: "NetworkPluginNotReady",
                                    message: "Network plugin returns error: no CNI configuration file in \(dir)")
        }
        return RuntimeCondition(type: RuntimeCondition.networkReady, status: true)
    }
}
