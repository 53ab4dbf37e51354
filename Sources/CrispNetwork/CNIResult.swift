public import CrispCore

/// A CNI ADD result (spec versions 0.3.x, 0.4.0, 1.0.0 and 1.1.0), with the parts crisp uses
/// decoded and the whole document kept for `prevResult` and the cache.
public struct CNIResult: Sendable, Equatable {
    public struct Interface: Sendable, Equatable {
        public var name: String
        public var mac: String
        /// The netns path for interfaces inside the pod; empty for host-side ones.
        public var sandbox: String
    }

    public struct IPConfig: Sendable, Equatable {
        /// CIDR notation, e.g. `10.250.1.5/24` or `fd00::5/64`.
        public var address: String
        public var gateway: String?
        /// Index into `interfaces`, when the plugin said which one.
        public var interface: Int?
        public var isIPv6: Bool { address.contains(":") }
        /// The address without its prefix length.
        public var ip: String { String(address.split(separator: "/").first ?? "") }
    }

    public struct Route: Sendable, Equatable {
        public var dst: String
        public var gw: String?
    }

    public struct DNS: Sendable, Equatable {
        public var nameservers: [String] = []
        public var domain: String = ""
        public var search: [String] = []
        public var options: [String] = []
    }

    public var cniVersion: String
    public var interfaces: [Interface]
    public var ips: [IPConfig]
    public var routes: [Route]
    public var dns: DNS
    public var document: JSONValue

    /// Parses a plugin's ADD output. `plugin` names the plugin in error messages.
    public init(document doc: JSONValue, plugin: String) throws(CrispError) {
        guard doc.objectValue != nil else { throw .internal("plugin \"\(plugin)\" returned a result that is not a JSON object") }
        let version = doc["cniVersion"]?.stringValue ?? ""
        guard let v = CNIVersion(version) else {
            throw .internal("plugin \"\(plugin)\" returned a result with cniVersion \"\(version)\"")
        }
        guard v >= CNIVersion(0, 3, 0) else {
            throw .internal("plugin \"\(plugin)\" returned a result of version \(version); crisp reads results of 0.3.0 and later")
        }
        cniVersion = version
        interfaces = (doc["interfaces"]?.arrayValue ?? []).map {
            Interface(name: $0["name"]?.stringValue ?? "", mac: $0["mac"]?.stringValue ?? "",
                      sandbox: $0["sandbox"]?.stringValue ?? "")
        }
        var ips: [IPConfig] = []
        for (i, e) in (doc["ips"]?.arrayValue ?? []).enumerated() {
            guard let address = e["address"]?.stringValue, address.contains("/") else {
                throw .internal("plugin \"\(plugin)\" returned ips[\(i)] without an address in CIDR form")
            }
            // 0.3.x/0.4.0 carry "version": "4"|"6"; 1.0.0 dropped it. The address says which.
            ips.append(IPConfig(address: address, gateway: e["gateway"]?.stringValue,
                                interface: e["interface"]?.intValue.map { Int($0) }))
        }
        self.ips = ips
        routes = (doc["routes"]?.arrayValue ?? []).compactMap { r in
            r["dst"]?.stringValue.map { Route(dst: $0, gw: r["gw"]?.stringValue) }
        }
        var dns = DNS()
        if let d = doc["dns"] {
            dns.nameservers = d["nameservers"]?.arrayValue?.compactMap(\.stringValue) ?? []
            dns.domain = d["domain"]?.stringValue ?? ""
            dns.search = d["search"]?.arrayValue?.compactMap(\.stringValue) ?? []
            dns.options = d["options"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        self.dns = dns
        document = doc
    }

    /// IPs of interfaces inside the pod (or of unattributed entries), IPv4 first then IPv6, as
    /// CRI's PodSandboxStatus wants them (the first is the pod IP).
    public var podIPs: [String] {
        let inPod = ips.filter { ip in
            guard let i = ip.interface, i >= 0, i < interfaces.count else { return true }
            return !interfaces[i].sandbox.isEmpty
        }
        return inPod.filter { !$0.isIPv6 }.map(\.ip) + inPod.filter(\.isIPv6).map(\.ip)
    }
}

/// The error a plugin reported on stdout (`{"code": 7, "msg": "…", "details": "…"}`), kept as
/// the `cause` of the CrispError the runner throws so callers can read the plugin's own code.
public struct CNIPluginError: Error, Sendable, Equatable, CustomStringConvertible {
    public var plugin: String
    public var command: String
    public var code: Int
    public var msg: String
    public var details: String

    public var description: String {
        var s = "plugin \"\(plugin)\" \(command) failed with CNI error code \(code): \(msg)"
        if !details.isEmpty { s += " (\(details))" }
        return s
    }

    /// The CrispError code for a CNI error code: 11 ("try again later") is `unavailable`;
    /// 4 (invalid environment) and 7 (invalid network config) are `invalidArgument`.
    public var crispCode: CrispError.Code {
        switch code {
        case 11: return .unavailable
        case 4, 7: return .invalidArgument
        default: return .internal
        }
    }
}
