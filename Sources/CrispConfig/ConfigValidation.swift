import CrispCore

extension ConfigLoader {
    /// Checks the merged configuration as a whole. Pure: touches no file, returns every problem.
    public static func validate(_ c: CrispConfiguration) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func bad(_ key: String, _ message: String) { problems.append(ConfigProblem(key: key, message: message)) }

        for (key, path) in [("crisp.root", c.root), ("crisp.runroot", c.runRoot), ("crisp.api.listen", c.api.listen),
                            ("crisp.network.network_dir", c.network.networkDir), ("crisp.runtime.conmon", c.runtime.conmon)] {
            if !path.hasPrefix("/") { bad(key, "must be an absolute path, got \"\(path)\"") }
        }
        for (key, path) in [("crisp.image.registries_conf", c.image.registriesConf),
                            ("crisp.image.signature_policy", c.image.signaturePolicy),
                            ("crisp.image.global_auth_file", c.image.globalAuthFile),
                            ("crisp.runtime.seccomp_profile", c.runtime.seccompProfile)] where !path.isEmpty && !path.hasPrefix("/") {
            bad(key, "must be an absolute path or empty, got \"\(path)\"")
        }
        for dir in c.network.pluginDirs where !dir.hasPrefix("/") {
            bad("crisp.network.plugin_dirs", "must hold absolute paths, got \"\(dir)\"")
        }
        if c.root == c.runRoot { bad("crisp.runroot", "must differ from crisp.root (\(c.root))") }
        switch c.storageDriver {
        case "devicemapper", "aufs":
            bad("crisp.storage_driver", "\"\(c.storageDriver)\" is not supported on this host: crisp supports overlay, vfs and btrfs")
        default: break
        }
        for option in c.storageOptions where !option.contains("=") {
            bad("crisp.storage_options", "invalid option \"\(option)\": want name=value")
        }
        for sysctl in c.runtime.defaultSysctls where !sysctl.contains("=") {
            bad("crisp.runtime.default_sysctls", "invalid sysctl \"\(sysctl)\": want name=value")
        }
        if c.runtime.appArmorProfile.isEmpty
            || !c.runtime.appArmorProfile.allSatisfy({ $0.isLetter || $0.isNumber || "-_./".contains($0) }) {
            bad("crisp.runtime.apparmor_profile", "must be a profile name (letters, digits, - _ . /), got \"\(c.runtime.appArmorProfile)\"")
        }
        for cap in c.runtime.defaultCapabilities {
            let name = cap.uppercased().hasPrefix("CAP_") ? String(cap.uppercased().dropFirst(4)) : cap.uppercased()
            if !LinuxCapabilities.all.contains(name) { bad("crisp.runtime.default_capabilities", "unknown capability \"\(cap)\"") }
        }
        if c.runtime.runtimes[c.runtime.defaultRuntime] == nil {
            bad("crisp.runtime.default_runtime", "\"\(c.runtime.defaultRuntime)\" is not a configured runtime (have: \(c.runtime.runtimes.keys.sorted().joined(separator: ", ")))")
        }
        for (name, handler) in c.runtime.runtimes.sorted(by: { $0.key < $1.key }) {
            let key = "\(ConfigSchema.handlersTable).\(name)"
            if name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) {
                bad(key, "invalid handler name \"\(name)\": letters, digits, '-', '_' and '.' only")
            }
            if !ConfigSchema.runtimeTypes.contains(handler.runtimeType) {
                bad(key + ".runtime_type", "invalid value \"\(handler.runtimeType)\": want one of \(ConfigSchema.runtimeTypes.joined(separator: ", "))")
            }
            if !handler.runtimePath.isEmpty && !handler.runtimePath.hasPrefix("/") {
                bad(key + ".runtime_path", "must be an absolute path, got \"\(handler.runtimePath)\"")
            }
            if !handler.runtimeRoot.isEmpty && !handler.runtimeRoot.hasPrefix("/") {
                bad(key + ".runtime_root", "must be an absolute path, got \"\(handler.runtimeRoot)\"")
            }
        }
        if c.api.streamEnableTLS && (c.api.streamTLSCert.isEmpty || c.api.streamTLSKey.isEmpty) {
            bad("crisp.api.stream_enable_tls", "needs crisp.api.stream_tls_cert and crisp.api.stream_tls_key")
        }
        if c.metrics.enableMetrics, c.api.streamPort != 0, c.metrics.metricsPort == c.api.streamPort {
            bad("crisp.metrics.metrics_port", "must differ from crisp.api.stream_port (\(c.api.streamPort))")
        }
        return problems
    }
}
