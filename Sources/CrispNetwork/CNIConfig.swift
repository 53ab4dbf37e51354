public import CrispCore

/// One plugin of a network configuration list: its `type` (the binary name), the capabilities
/// it declares, and its whole JSON object, passed to the plugin with `name`, `cniVersion`,
/// `prevResult` and `runtimeConfig` added.
public struct CNIPluginConfig: Sendable, Equatable {
    public var type: String
    /// Capability names the plugin declared with `"capabilities": {"portMappings": true}`.
    public var capabilities: Set<String>
    public var raw: [String: JSONValue]

    public init(raw: [String: JSONValue], index: Int, source: String) throws(CrispError) {
        guard let type = raw["type"]?.stringValue, !type.isEmpty else {
            throw .invalidArgument("\(source): plugin \(index) has no \"type\"")
        }
        guard !type.contains("/"), type != ".", type != ".." else {
            throw .invalidArgument("\(source): plugin \(index) type \"\(type)\" must be a plain binary name")
        }
        var caps = Set<String>()
        if let c = raw["capabilities"] {
            guard let o = c.objectValue else {
                throw .invalidArgument("\(source): plugin \"\(type)\" \"capabilities\" must be an object")
            }
            for (k, v) in o where v.boolValue == true { caps.insert(k) }
        }
        self.type = type
        self.capabilities = caps
        self.raw = raw
    }
}

/// A network configuration list (a `.conflist`, or a single-plugin `.conf`/`.json` wrapped as a
/// list of one), validated by construction: a name, a supported cniVersion and at least one plugin
/// with a type.
public struct CNINetworkConfigList: Sendable, Equatable {
    public var name: String
    public var cniVersion: String
    public var version: CNIVersion
    public var disableCheck: Bool
    public var disableGC: Bool
    public var plugins: [CNIPluginConfig]
    /// The file this came from ("" when built from bytes), for messages.
    public var source: String
    /// The document as read, so the result cache can store exactly what ADD used.
    public var document: JSONValue

    /// Parses a config file's bytes. `.conflist` files must hold a `plugins` array; `.conf` and
    /// `.json` files hold one plugin, or a list when they have `plugins`.
    public init(bytes: some Collection<UInt8>, source: String) throws(CrispError) {
        let doc = try JSONValue.parse(bytes, what: source)
        try self.init(document: doc, source: source, requireList: source.hasSuffix(".conflist"))
    }

    public init(document doc: JSONValue, source: String, requireList: Bool = false) throws(CrispError) {
        guard let obj = doc.objectValue else { throw .invalidArgument("\(source): top level must be a JSON object") }
        let isList = obj["plugins"] != nil
        if requireList && !isList { throw .invalidArgument("\(source): a .conflist needs a \"plugins\" array") }
        guard let name = obj["name"]?.stringValue, !name.isEmpty else {
            throw .invalidArgument("\(source): missing \"name\"")
        }
        let versionString = obj["cniVersion"]?.stringValue ?? ""
        guard let version = CNIVersion(versionString), CNIVersion.supported.contains(versionString) else {
            throw .invalidArgument(
                "\(source): cniVersion \"\(versionString)\" is not supported (want one of \(CNIVersion.supported.joined(separator: ", ")))")
        }
        var plugins: [CNIPluginConfig] = []
        if isList {
            guard let list = obj["plugins"]?.arrayValue, !list.isEmpty else {
                throw .invalidArgument("\(source): \"plugins\" must be a non-empty array")
            }
            for (i, p) in list.enumerated() {
                guard let po = p.objectValue else { throw .invalidArgument("\(source): plugin \(i) is not an object") }
                plugins.append(try CNIPluginConfig(raw: po, index: i, source: source))
            }
        } else {
            plugins = [try CNIPluginConfig(raw: obj, index: 0, source: source)]
        }
        self.name = name
        self.cniVersion = versionString
        self.version = version
        self.disableCheck = obj["disableCheck"]?.boolValue ?? false
        self.disableGC = obj["disableGC"]?.boolValue ?? false
        self.plugins = plugins
        self.source = source
        self.document = doc
    }
}
