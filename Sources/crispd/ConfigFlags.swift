import Foundation
import ArgumentParser
import CrispConfig

/// One flag per configuration key, named as the key with dashes. Each is optional: a flag given
/// overrides the files, a flag left out keeps them. Help text comes from the config schema.
struct ConfigFlags: ParsableArguments {
    @Option(name: .customLong("config"), help: "Main configuration file.")
    var configFile: String?
    @Option(name: .customLong("config-dir"), help: "Drop-in directory; every *.conf is applied in lexical order.")
    var configDir: String?

    @Option(help: doc("crisp.root")) var root: String?
    @Option(help: doc("crisp.runroot")) var runroot: String?
    @Option(help: doc("crisp.log_level")) var logLevel: String?
    @Option(help: doc("crisp.storage_driver")) var storageDriver: String?
    @Option(help: doc("crisp.storage_options", list: true)) var storageOptions: String?
    @Option(help: doc("crisp.storage_sync")) var storageSync: String?

    @Option(help: doc("crisp.api.listen")) var listen: String?
    @Option(help: doc("crisp.api.stream_address")) var streamAddress: String?
    @Option(help: doc("crisp.api.stream_port")) var streamPort: String?
    @Option(help: doc("crisp.api.stream_enable_tls")) var streamEnableTls: String?
    @Option(help: doc("crisp.api.stream_tls_cert")) var streamTlsCert: String?
    @Option(help: doc("crisp.api.stream_tls_key")) var streamTlsKey: String?
    @Option(help: doc("crisp.api.stream_tls_ca")) var streamTlsCa: String?
    @Option(help: doc("crisp.api.stream_idle_timeout")) var streamIdleTimeout: String?
    @Option(help: doc("crisp.api.grpc_max_send_msg_size")) var grpcMaxSendMsgSize: String?
    @Option(help: doc("crisp.api.grpc_max_recv_msg_size")) var grpcMaxRecvMsgSize: String?

    @Option(help: doc("crisp.runtime.default_runtime")) var defaultRuntime: String?
    @Option(help: doc("crisp.runtime.conmon")) var conmon: String?
    @Option(help: doc("crisp.runtime.cgroup_manager")) var cgroupManager: String?
    @Option(help: doc("crisp.runtime.default_capabilities", list: true)) var defaultCapabilities: String?
    @Option(help: doc("crisp.runtime.default_sysctls", list: true)) var defaultSysctls: String?
    @Option(help: doc("crisp.runtime.pids_limit")) var pidsLimit: String?
    @Option(help: doc("crisp.runtime.log_size_max")) var logSizeMax: String?
    @Option(help: doc("crisp.runtime.seccomp_profile")) var seccompProfile: String?
    @Option(help: doc("crisp.runtime.seccomp_use_default_when_empty")) var seccompUseDefaultWhenEmpty: String?
    @Option(help: doc("crisp.runtime.apparmor_profile")) var apparmorProfile: String?
    @Option(help: doc("crisp.runtime.enable_criu_support")) var enableCriuSupport: String?
    @Option(help: ArgumentHelp("Add or replace a runtime handler, as NAME:PATH[:ROOT[:TYPE]] (repeatable).",
                               valueName: "handler"))
    var runtimes: [String] = []

    @Option(help: doc("crisp.image.pause_image")) var pauseImage: String?
    @Option(help: doc("crisp.image.pause_command")) var pauseCommand: String?
    @Option(help: doc("crisp.image.registries_conf")) var registriesConf: String?
    @Option(help: doc("crisp.image.signature_policy")) var signaturePolicy: String?
    @Option(help: doc("crisp.image.global_auth_file")) var globalAuthFile: String?
    @Option(help: doc("crisp.image.image_volumes")) var imageVolumes: String?
    @Option(help: doc("crisp.image.max_parallel_downloads")) var maxParallelDownloads: String?
    @Option(help: doc("crisp.image.pull_progress_timeout")) var pullProgressTimeout: String?
    @Option(help: doc("crisp.image.allow_foreign_layer_urls")) var allowForeignLayerUrls: String?

    @Option(help: doc("crisp.network.network_dir")) var networkDir: String?
    @Option(help: doc("crisp.network.plugin_dirs", list: true)) var pluginDirs: String?
    @Option(help: doc("crisp.network.cni_default_network")) var cniDefaultNetwork: String?

    @Option(help: doc("crisp.metrics.enable_metrics")) var enableMetrics: String?
    @Option(help: doc("crisp.metrics.metrics_port")) var metricsPort: String?

    /// The overrides in schema order, as (dotted key, raw text).
    var overrides: [(key: String, value: String)] {
        let given: [(String, String?)] = [
            ("crisp.root", root), ("crisp.runroot", runroot), ("crisp.log_level", logLevel),
            ("crisp.storage_driver", storageDriver), ("crisp.storage_options", storageOptions), ("crisp.storage_sync", storageSync),
            ("crisp.api.listen", listen), ("crisp.api.stream_address", streamAddress),
            ("crisp.api.stream_port", streamPort), ("crisp.api.stream_enable_tls", streamEnableTls),
            ("crisp.api.stream_tls_cert", streamTlsCert), ("crisp.api.stream_tls_key", streamTlsKey),
            ("crisp.api.stream_tls_ca", streamTlsCa), ("crisp.api.stream_idle_timeout", streamIdleTimeout),
            ("crisp.api.grpc_max_send_msg_size", grpcMaxSendMsgSize),
            ("crisp.api.grpc_max_recv_msg_size", grpcMaxRecvMsgSize),
            ("crisp.runtime.default_runtime", defaultRuntime), ("crisp.runtime.conmon", conmon),
            ("crisp.runtime.cgroup_manager", cgroupManager), ("crisp.runtime.default_capabilities", defaultCapabilities),
            ("crisp.runtime.default_sysctls", defaultSysctls), ("crisp.runtime.pids_limit", pidsLimit),
            ("crisp.runtime.log_size_max", logSizeMax), ("crisp.runtime.seccomp_profile", seccompProfile),
            ("crisp.runtime.seccomp_use_default_when_empty", seccompUseDefaultWhenEmpty),
            ("crisp.runtime.apparmor_profile", apparmorProfile), ("crisp.runtime.enable_criu_support", enableCriuSupport),
            ("crisp.image.pause_image", pauseImage), ("crisp.image.pause_command", pauseCommand),
            ("crisp.image.registries_conf", registriesConf), ("crisp.image.signature_policy", signaturePolicy),
            ("crisp.image.global_auth_file", globalAuthFile), ("crisp.image.image_volumes", imageVolumes),
            ("crisp.image.max_parallel_downloads", maxParallelDownloads),
            ("crisp.image.pull_progress_timeout", pullProgressTimeout),
            ("crisp.image.allow_foreign_layer_urls", allowForeignLayerUrls),
            ("crisp.network.network_dir", networkDir), ("crisp.network.plugin_dirs", pluginDirs),
            ("crisp.network.cni_default_network", cniDefaultNetwork),
            ("crisp.metrics.enable_metrics", enableMetrics), ("crisp.metrics.metrics_port", metricsPort),
        ]
        var out = given.compactMap { key, value in value.map { (key: key, value: $0) } }
        out += runtimes.map { (key: ConfigSchema.handlersTable, value: $0) }
        return out
    }

    var sources: ConfigSources {
        ConfigSources(mainFile: configFile ?? ConfigSources.defaultMainFile,
                      mainFileRequired: configFile != nil,
                      dropInDirectory: configDir ?? ConfigSources.defaultDropInDirectory,
                      overrides: overrides)
    }
}

private func doc(_ path: String, list: Bool = false) -> ArgumentHelp {
    guard let key = ConfigSchema.key(path: path) else { return ArgumentHelp("(unknown key \(path))") }
    var text = key.doc
    if case .choice(let options) = key.kind { text += " One of: \(options.joined(separator: ", "))." }
    if list { text += " Comma-separated." }
    text += " [\(path)]"
    // Not Foundation's replacingOccurrences: it goes through CoreFoundation's string search, code
    // that crispd would otherwise never map (this runs at every start, so it counts in idle RSS).
    return ArgumentHelp(text, valueName: String(key.name.map { $0 == "_" ? "-" : $0 }))
}
