public import CrispCore
public import Logging

/// Runs the plugins of a network configuration list per the CNI spec: ADD in order, each plugin
/// getting `name`, `cniVersion`, the previous plugin's result as `prevResult` and the capability
/// arguments it declared as `runtimeConfig`; DEL in reverse with the cached result; CHECK; and
/// STATUS/GC for 1.1.0 configs. Stateless; safe to call concurrently.
public struct CNIChainRunner: Sendable {
    public var executor: any CNIExecutor
    public var pluginDirs: [String]
    public var timeout: Duration
    public var logger: Logger

    public init(executor: any CNIExecutor, pluginDirs: [String], timeout: Duration = .seconds(60), logger: Logger) {
        self.executor = executor
        self.pluginDirs = pluginDirs
        self.timeout = timeout
        self.logger = logger
    }

    /// Runs ADD through the list and returns the last plugin's result. On a failure the error
    /// names the failing plugin; the plugins before it are NOT undone here (the caller runs `del`
    /// for the whole list, as every plugin's DEL must tolerate never having been added).
    public func add(_ net: CNINetworkConfigList, _ rt: CNIRuntimeConf) async throws(CrispError) -> CNIResult {
        // Resolve every binary first, so a missing plugin fails before anything is created.
        let paths = try resolve(net)
        var prev: JSONValue? = nil
        for (i, plugin) in net.plugins.enumerated() {
            let out = try await invoke(.add, net, plugin, path: paths[i], rt, prevResult: prev)
            let doc = try JSONValue.parse(out, what: "result of CNI plugin \"\(plugin.type)\" ADD")
            _ = try CNIResult(document: doc, plugin: plugin.type)
            prev = doc
        }
        guard let prev else { throw .internal("network \"\(net.name)\" has no plugins") }
        return try CNIResult(document: prev, plugin: net.plugins.last?.type ?? "")
    }

    /// Runs DEL through the list in reverse order, passing `prevResult` (the cached ADD result)
    /// for 0.4.0+ configs. Every plugin is attempted; the first error is thrown afterwards.
    public func del(_ net: CNINetworkConfigList, _ rt: CNIRuntimeConf, prevResult: JSONValue?) async throws(CrispError) {
        var firstError: CrispError? = nil
        let prev = net.version.passesPrevResultOnDelete ? prevResult : nil
        for plugin in net.plugins.reversed() {
            do throws(CrispError) {
                let path = try executor.findPlugin(plugin.type, in: pluginDirs)
                _ = try await invoke(.del, net, plugin, path: path, rt, prevResult: prev)
            } catch {
                logger.warning("CNI DEL failed", metadata: [
                    "network": "\(net.name)", "plugin": "\(plugin.type)", "container": "\(rt.containerID)",
                    "error": "\(error)"])
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }

    /// Runs CHECK through the list with the cached result. A no-op for configs before 0.4.0 or
    /// with `disableCheck`.
    public func check(_ net: CNINetworkConfigList, _ rt: CNIRuntimeConf, prevResult: JSONValue) async throws(CrispError) {
        guard net.version.supportsCheck, !net.disableCheck else { return }
        let paths = try resolve(net)
        for (i, plugin) in net.plugins.enumerated() {
            _ = try await invoke(.check, net, plugin, path: paths[i], rt, prevResult: prevResult)
        }
    }

    /// Runs STATUS on every plugin of a 1.1.0+ config; returns false for older configs (STATUS
    /// not available) and throws the first plugin's error otherwise.
    @discardableResult
    public func status(_ net: CNINetworkConfigList) async throws(CrispError) -> Bool {
        guard net.version.supportsStatusAndGC else { return false }
        let paths = try resolve(net)
        let rt = CNIRuntimeConf(containerID: "", netnsPath: "")
        for (i, plugin) in net.plugins.enumerated() {
            _ = try await invoke(.status, net, plugin, path: paths[i], rt, prevResult: nil)
        }
        return true
    }

    /// Runs GC on every plugin of a 1.1.0+ config (not `disableGC`) with the attachments that
    /// are still valid, so plugins release everything else. Returns false when not supported.
    @discardableResult
    public func gc(_ net: CNINetworkConfigList, validAttachments: [(containerID: String, ifName: String)])
        async throws(CrispError) -> Bool
    {
        guard net.version.supportsStatusAndGC, !net.disableGC else { return false }
        let paths = try resolve(net)
        let valid = JSONValue.array(validAttachments.map {
            .object(["containerID": .string($0.containerID), "ifname": .string($0.ifName)])
        })
        let rt = CNIRuntimeConf(containerID: "", netnsPath: "")
        for (i, plugin) in net.plugins.enumerated() {
            _ = try await invoke(.gc, net, plugin, path: paths[i], rt, prevResult: nil,
                                 extra: ["cni.dev/valid-attachments": valid])
        }
        return true
    }

    func resolve(_ net: CNINetworkConfigList) throws(CrispError) -> [String] {
        var paths: [String] = []
        for p in net.plugins { paths.append(try executor.findPlugin(p.type, in: pluginDirs)) }
        return paths
    }

    /// The exact stdin a plugin gets.
    public static func pluginConfig(_ net: CNINetworkConfigList, _ plugin: CNIPluginConfig, _ rt: CNIRuntimeConf,
                                    prevResult: JSONValue?, extra: [String: JSONValue] = [:]) -> JSONValue
    {
        var o = plugin.raw
        o["name"] = .string(net.name)
        o["cniVersion"] = .string(net.cniVersion)
        if let prevResult { o["prevResult"] = prevResult } else { o.removeValue(forKey: "prevResult") }
        var runtime: [String: JSONValue] = [:]
        for cap in plugin.capabilities.sorted() { if let v = rt.capabilityArgs[cap] { runtime[cap] = v } }
        if runtime.isEmpty { o.removeValue(forKey: "runtimeConfig") } else { o["runtimeConfig"] = .object(runtime) }
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    private func invoke(_ cmd: CNICommand, _ net: CNINetworkConfigList, _ plugin: CNIPluginConfig, path: String,
                        _ rt: CNIRuntimeConf, prevResult: JSONValue?, extra: [String: JSONValue] = [:])
        async throws(CrispError) -> [UInt8]
    {
        let stdin = Self.pluginConfig(net, plugin, rt, prevResult: prevResult, extra: extra).encoded()
        let req = CNIExecRequest(pluginType: plugin.type, pluginPath: path, command: cmd,
                                 cniEnvironment: rt.environment(command: cmd, pluginPath: pluginDirs),
                                 stdin: stdin, timeout: timeout)
        let start = ContinuousClock.now
        let out = try await executor.execute(req)
        logger.debug("CNI plugin ran", metadata: [
            "network": "\(net.name)", "plugin": "\(plugin.type)", "command": "\(cmd.rawValue)",
            "container": "\(rt.containerID)", "status": "\(out.exitStatus)", "elapsed": "\(ContinuousClock.now - start)"])
        if out.exitStatus == 0 { return out.stdout }
        throw Self.pluginFailure(plugin.type, cmd, network: net.name, out)
    }

    static func pluginFailure(_ type: String, _ cmd: CNICommand, network: String, _ out: CNIExecOutput) -> CrispError {
        if let doc = try? JSONValue.parse(out.stdout, what: "error"), let code = doc["code"]?.intValue {
            let e = CNIPluginError(plugin: type, command: cmd.rawValue, code: Int(code),
                                   msg: doc["msg"]?.stringValue ?? "", details: doc["details"]?.stringValue ?? "")
            return CrispError(e.crispCode, "network \"\(network)\": \(e.description)", cause: e)
        }
        let stderr = String(decoding: out.stderr.prefix(2048), as: UTF8.self).trimmingSpaces
        let stdout = String(decoding: out.stdout.prefix(2048), as: UTF8.self).trimmingSpaces
        let text = [stdout, stderr].filter { !$0.isEmpty }.joined(separator: "; ")
        return .internal("network \"\(network)\": CNI plugin \"\(type)\" \(cmd.rawValue) exited with status \(out.exitStatus)"
            + (text.isEmpty ? " and no output" : ": \(text)"))
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
