import Foundation

/// The list of every configuration key: its table, name, documentation and where it lives in
/// `CrispConfiguration`. The file parser, the command-line flags, `crispd config`, the JSON in
/// `Status` and the reference page in the README are all derived from this one list.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable, Equatable {
        case string
        case choice([String])
        case int(ClosedRange<Int>)
        case bool
        case strings
    }

    /// Table path such as `crisp.api`.
    public let table: String
    /// Key name as written in TOML, such as `stream_port`.
    public let name: String
    public let kind: Kind
    public let doc: String
    /// Applied again on SIGHUP without a restart.
    public let reloadable: Bool
    let access: Access

    /// Dotted path such as `crisp.api.listen`.
    public var path: String { "\(table).\(name)" }
    /// The command-line flag, such as `--stream-port`.
    public var flag: String { "--" + name.replacingOccurrences(of: "_", with: "-") }

    enum Access: Sendable {
        case string(any WritableKeyPath<CrispConfiguration, String> & Sendable)
        case int(any WritableKeyPath<CrispConfiguration, Int> & Sendable)
        case bool(any WritableKeyPath<CrispConfiguration, Bool> & Sendable)
        case strings(any WritableKeyPath<CrispConfiguration, [String]> & Sendable)
        /// A closed choice: the enum's raw value is what is written.
        case choice(get: @Sendable (CrispConfiguration) -> String, set: @Sendable (inout CrispConfiguration, String) -> Void)

        static func choice<E: RawRepresentable & CaseIterable & Sendable>(
            _ kp: any WritableKeyPath<CrispConfiguration, E> & Sendable
        ) -> Access where E.RawValue == String {
            .choice(get: { $0[keyPath: kp].rawValue },
                    set: { c, v in if let e = E(rawValue: v) { c[keyPath: kp] = e } })
        }
    }


    public func value(in config: CrispConfiguration) -> ConfigValue {
        switch access {
        case .string(let kp): .string(config[keyPath: kp])
        case .int(let kp): .int(config[keyPath: kp])
        case .bool(let kp): .bool(config[keyPath: kp])
        case .strings(let kp): .strings(config[keyPath: kp])
        case .choice(let get, _): .string(get(config))
        }
    }

    /// Stores a value already checked against `kind`.
    func assign(_ value: ConfigValue, to config: inout CrispConfiguration) {
        switch (access, value) {
        case (.string(let kp), .string(let v)): config[keyPath: kp] = v
        case (.int(let kp), .int(let v)): config[keyPath: kp] = v
        case (.bool(let kp), .bool(let v)): config[keyPath: kp] = v
        case (.strings(let kp), .strings(let v)): config[keyPath: kp] = v
        case (.choice(_, let set), .string(let v)): set(&config, v)
        default: preconditionFailure("config value of the wrong kind for \(path)")
        }
    }

    /// Checks a value read from a file or a flag; returns the problem in words.
    func check(_ value: ConfigValue) -> String? {
        switch (kind, value) {
        case (.string, .string), (.bool, .bool), (.strings, .strings): return nil
        case (.choice(let options), .string(let v)):
            return options.contains(v) ? nil : "invalid value \"\(v)\": want one of \(options.joined(separator: ", "))"
        case (.int(let range), .int(let v)):
            return range.contains(v) ? nil : "invalid value \(v): want \(range.lowerBound)…\(range.upperBound)"
        default:
            return "wrong type: want \(kind.typeName), got \(value.typeName)"
        }
    }
}

extension ConfigKey {
    /// A key whose value is one of `E`'s cases.
    init<E: RawRepresentable & CaseIterable & Sendable>(table: String, name: String, choices kp: any WritableKeyPath<CrispConfiguration, E> & Sendable,
                                                         doc: String, reloadable: Bool) where E.RawValue == String {
        self.init(table: table, name: name, kind: .choice(E.allCases.map(\.rawValue)), doc: doc, reloadable: reloadable,
                  access: .choice(kp))
    }
}

public enum ConfigValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case strings([String])

    var typeName: String {
        switch self {
        case .string: "string"
        case .int: "integer"
        case .bool: "boolean"
        case .strings: "array of strings"
        }
    }
}

extension ConfigKey.Kind {
    var typeName: String {
        switch self {
        case .string, .choice: "string"
        case .int: "integer"
        case .bool: "boolean"
        case .strings: "array of strings"
        }
    }
}

public enum ConfigSchema {
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    /// Storage drivers the configuration accepts. devicemapper and aufs are known names so that
    /// selecting them is reported as unsupported rather than as a typo.
    public static let storageDrivers = ["overlay", "vfs", "btrfs", "devicemapper", "aufs"]
    public static let runtimeTypes = ["oci"]
    /// Tables in file order; `crisp.runtime.runtimes` is the one table of named sub-tables.
    public static let tables = ["crisp", "crisp.api", "crisp.runtime", "crisp.image", "crisp.network", "crisp.metrics"]
    public static let handlersTable = "crisp.runtime.runtimes"

    public static let keys: [ConfigKey] = [
        ConfigKey(table: "crisp", name: "root", kind: .string,
                  doc: "Directory for persistent state: images, layers, containers.",
                  reloadable: false, access: .string(\.root)),
        ConfigKey(table: "crisp", name: "runroot", kind: .string,
                  doc: "Directory for state that lives until reboot: sockets, exit files, mounts.",
                  reloadable: false, access: .string(\.runRoot)),
        ConfigKey(table: "crisp", name: "log_level", kind: .choice(logLevels),
                  doc: "Least severe level logged.", reloadable: true, access: .string(\.logLevel)),
        ConfigKey(table: "crisp", name: "storage_driver", kind: .choice(storageDrivers),
                  doc: "Layer storage driver: overlay, vfs or btrfs.",
                  reloadable: false, access: .string(\.storageDriver)),
        ConfigKey(table: "crisp", name: "storage_options", kind: .strings,
                  doc: "Driver options as \"name=value\" strings.",
                  reloadable: false, access: .strings(\.storageOptions)),
        ConfigKey(table: "crisp", name: "storage_sync", choices: \.storageSync,
                  doc: "none trusts the page cache (safe against crashes, not power loss); filesystem syncs each new layer's filesystem before the layer becomes visible, and every metadata commit and pod/container record.",
                  reloadable: false),

        ConfigKey(table: "crisp.api", name: "listen", kind: .string,
                  doc: "Path of the CRI gRPC unix socket.", reloadable: false, access: .string(\.api.listen)),
        ConfigKey(table: "crisp.api", name: "stream_address", kind: .string,
                  doc: "Address the exec/attach/port-forward streaming server listens on (HTTP; SPDY/3.1 and WebSocket upgrades). The kubelet connects to it, so keep it local unless the API server must reach it directly.",
                  reloadable: false, access: .string(\.api.streamAddress)),
        ConfigKey(table: "crisp.api", name: "stream_port", kind: .int(0...65535),
                  doc: "Port of the streaming server; 0 picks a free port at start-up (logged, and shown in Status verbose info).",
                  reloadable: false, access: .int(\.api.streamPort)),
        ConfigKey(table: "crisp.api", name: "stream_enable_tls", kind: .bool,
                  doc: "Serve the streaming URLs over HTTPS with stream_tls_cert and stream_tls_key.",
                  reloadable: false, access: .bool(\.api.streamEnableTLS)),
        ConfigKey(table: "crisp.api", name: "stream_tls_cert", kind: .string,
                  doc: "PEM certificate chain of the streaming server. Read again for each new connection once the file changes, so a renewed certificate needs no restart.",
                  reloadable: false, access: .string(\.api.streamTLSCert)),
        ConfigKey(table: "crisp.api", name: "stream_tls_key", kind: .string,
                  doc: "PEM private key of stream_tls_cert (reloaded with it).",
                  reloadable: false, access: .string(\.api.streamTLSKey)),
        ConfigKey(table: "crisp.api", name: "stream_tls_ca", kind: .string,
                  doc: "PEM CA bundle: when set, streaming clients must present a certificate it signed (reloaded like the certificate).",
                  reloadable: false, access: .string(\.api.streamTLSCA)),
        ConfigKey(table: "crisp.api", name: "stream_idle_timeout", kind: .int(1...Int(Int32.max)),
                  doc: "Seconds a streaming connection may stay idle (no byte either way) before it is closed; 14400 (4 h) is the kubelet's value.",
                  reloadable: false, access: .int(\.api.streamIdleTimeout)),
        ConfigKey(table: "crisp.api", name: "grpc_max_send_msg_size", kind: .int(1...Int(Int32.max)),
                  doc: "Reserved (CRI-O's key): accepted and unused; crispd does not cap the size of its responses.",
                  reloadable: false, access: .int(\.api.grpcMaxSendMsgSize)),
        ConfigKey(table: "crisp.api", name: "grpc_max_recv_msg_size", kind: .int(1...Int(Int32.max)),
                  doc: "Largest gRPC message the daemon accepts, in bytes.",
                  reloadable: false, access: .int(\.api.grpcMaxRecvMsgSize)),

        ConfigKey(table: "crisp.runtime", name: "default_runtime", kind: .string,
                  doc: "Runtime handler used when a pod names none; must be a key of [crisp.runtime.runtimes].",
                  reloadable: false, access: .string(\.runtime.defaultRuntime)),
        ConfigKey(table: "crisp.runtime", name: "conmon", kind: .string,
                  doc: "Path of the conmon binary that supervises each container.",
                  reloadable: false, access: .string(\.runtime.conmon)),
        ConfigKey(table: "crisp.runtime", name: "cgroup_manager", choices: \.runtime.cgroupManager,
                  doc: "Cgroup driver: cgroupfs or systemd; the kubelet's must match.",
                  reloadable: false),
        ConfigKey(table: "crisp.runtime", name: "default_capabilities", kind: .strings,
                  doc: "Capabilities every container gets unless it drops them.",
                  reloadable: false, access: .strings(\.runtime.defaultCapabilities)),
        ConfigKey(table: "crisp.runtime", name: "default_sysctls", kind: .strings,
                  doc: "Sysctls set in every pod, as \"name=value\" strings.",
                  reloadable: false, access: .strings(\.runtime.defaultSysctls)),
        ConfigKey(table: "crisp.runtime", name: "pids_limit", kind: .int(-1...Int(Int32.max)),
                  doc: "Process limit per container; 0 or -1 means no limit.",
                  reloadable: false, access: .int(\.runtime.pidsLimit)),
        ConfigKey(table: "crisp.runtime", name: "log_size_max", kind: .int(-1...Int.max),
                  doc: "Largest container log file in bytes before conmon truncates it; -1 means no limit.",
                  reloadable: false, access: .int(\.runtime.logSizeMax)),
        ConfigKey(table: "crisp.runtime", name: "seccomp_profile", kind: .string,
                  doc: "Absolute path of a seccomp profile (Docker/OCI JSON) that replaces crisp's built-in RuntimeDefault profile. Read at start-up; a missing or malformed file stops crispd.",
                  reloadable: false, access: .string(\.runtime.seccompProfile)),
        ConfigKey(table: "crisp.runtime", name: "seccomp_use_default_when_empty", kind: .bool,
                  doc: "A container or pod that names no seccomp profile runs under RuntimeDefault (as CRI-O). false gives it none, as the CRI itself defines an empty profile (critest expects that).",
                  reloadable: false, access: .bool(\.runtime.seccompUseDefaultWhenEmpty)),
        ConfigKey(table: "crisp.runtime", name: "enable_criu_support", kind: .bool,
                  doc: "CheckpointContainer and restore (a container created from a checkpoint archive) through CRIU; needs the criu package and a kernel CRIU supports. Off by default, as in CRI-O.",
                  reloadable: false, access: .bool(\.runtime.enableCriuSupport)),
        ConfigKey(table: "crisp.runtime", name: "apparmor_profile", kind: .string,
                  doc: "Name of the AppArmor profile RuntimeDefault means. crisp loads its own crisp-default when the kernel lacks it; any other name must be loaded already. Ignored where AppArmor is off.",
                  reloadable: false, access: .string(\.runtime.appArmorProfile)),

        ConfigKey(table: "crisp.image", name: "pause_image", kind: .string,
                  doc: "Image of the infra container; empty uses crisp's own pause binary.",
                  reloadable: true, access: .string(\.image.pauseImage)),
        ConfigKey(table: "crisp.image", name: "pause_command", kind: .string,
                  doc: "Command run in the infra container.",
                  reloadable: false, access: .string(\.image.pauseCommand)),
        ConfigKey(table: "crisp.image", name: "registries_conf", kind: .string,
                  doc: "containers-registries.conf(5) file: mirrors, insecure and blocked registries.",
                  reloadable: true, access: .string(\.image.registriesConf)),
        ConfigKey(table: "crisp.image", name: "signature_policy", kind: .string,
                  doc: "containers-policy.json(5) file that decides which images may be pulled.",
                  reloadable: false, access: .string(\.image.signaturePolicy)),
        ConfigKey(table: "crisp.image", name: "global_auth_file", kind: .string,
                  doc: "auth.json with registry credentials used when a pull brings none.",
                  reloadable: false, access: .string(\.image.globalAuthFile)),
        ConfigKey(table: "crisp.image", name: "image_volumes", choices: \.image.imageVolumes,
                  doc: "What to do with an image's declared volumes: mkdir, bind or ignore.",
                  reloadable: false),
        ConfigKey(table: "crisp.image", name: "max_parallel_downloads", kind: .int(1...64),
                  doc: "Layers downloaded at once per pull.",
                  reloadable: false, access: .int(\.image.maxParallelDownloads)),
        ConfigKey(table: "crisp.image", name: "pull_progress_timeout", kind: .int(1...86400),
                  doc: "Seconds a layer download may receive no data before the pull fails.",
                  reloadable: false, access: .int(\.image.pullProgressTimeout)),
        ConfigKey(table: "crisp.image", name: "allow_foreign_layer_urls", kind: .bool,
                  doc: "Fetch foreign (non-distributable) layers from the URLs in their manifest instead of the registry.",
                  reloadable: false, access: .bool(\.image.allowForeignLayerURLs)),

        ConfigKey(table: "crisp.network", name: "network_dir", kind: .string,
                  doc: "Directory watched for CNI network configurations.",
                  reloadable: false, access: .string(\.network.networkDir)),
        ConfigKey(table: "crisp.network", name: "plugin_dirs", kind: .strings,
                  doc: "Directories searched for CNI plugin binaries, in order.",
                  reloadable: false, access: .strings(\.network.pluginDirs)),
        ConfigKey(table: "crisp.network", name: "cni_default_network", kind: .string,
                  doc: "Name of the CNI network for pods; empty takes the first file by name.",
                  reloadable: false, access: .string(\.network.cniDefaultNetwork)),

        ConfigKey(table: "crisp.metrics", name: "enable_metrics", kind: .bool,
                  doc: "Serve Prometheus metrics on 127.0.0.1:metrics_port.",
                  reloadable: false, access: .bool(\.metrics.enableMetrics)),
        ConfigKey(table: "crisp.metrics", name: "metrics_port", kind: .int(1...65535),
                  doc: "Port of the metrics endpoint.",
                  reloadable: false, access: .int(\.metrics.metricsPort)),
    ]

    /// Keys of each `[crisp.runtime.runtimes.NAME]` table.
    public static let handlerKeys: [(name: String, doc: String)] = [
        ("runtime_path", "Path of the OCI runtime binary (runc or crun)."),
        ("runtime_root", "State directory passed to the runtime as --root."),
        ("runtime_type", "How the runtime is driven; only \"oci\" (through conmon)."),
    ]

    public static func key(path: String) -> ConfigKey? { keys.first { $0.path == path } }
    public static func key(flagName: String) -> ConfigKey? { keys.first { $0.flag == "--" + flagName } }
}

extension ConfigKey {
    /// Copies this key's value from one configuration to another.
    public func copy(from source: CrispConfiguration, to target: inout CrispConfiguration) {
        assign(value(in: source), to: &target)
    }
}
