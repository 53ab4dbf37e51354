public import CrispCore

extension PortMapping {
    var json: JSONValue {
        var o: [String: JSONValue] = ["hostPort": .int(Int64(hostPort)), "containerPort": .int(Int64(containerPort)),
                                      "protocol": .string(`protocol`.rawValue)]
        if !hostIP.isEmpty { o["hostIP"] = .string(hostIP) }
        return .object(o)
    }
}

/// Everything about one attachment that is not the network config: ids, netns, interface name,
/// CNI_ARGS and the capability arguments offered to plugins (each plugin gets only those it
/// declares in `capabilities`).
public struct CNIRuntimeConf: Sendable, Equatable, Codable {
    public var containerID: String
    /// Path of the pinned netns; empty on DEL when it no longer exists (plugins then release
    /// what they can, e.g. IPAM).
    public var netnsPath: String
    public var ifName: String
    /// CNI_ARGS pairs, in order.
    public var args: [[String]]
    public var capabilityArgs: [String: JSONValue]

    public init(containerID: String, netnsPath: String, ifName: String = "eth0", args: [(String, String)] = [],
                capabilityArgs: [String: JSONValue] = [:]) {
        self.containerID = containerID
        self.netnsPath = netnsPath
        self.ifName = ifName
        self.args = args.map { [$0.0, $0.1] }
        self.capabilityArgs = capabilityArgs
    }

    /// `K=V;K=V` as CNI_ARGS wants it.
    public var cniArgsString: String {
        args.compactMap { $0.count == 2 ? "\($0[0])=\($0[1])" : nil }.joined(separator: ";")
    }

    func environment(command: CNICommand, pluginPath: [String]) -> [String: String] {
        var env = ["CNI_COMMAND": command.rawValue, "CNI_PATH": pluginPath.joined(separator: ":")]
        if command != .status && command != .gc && command != .version {
            env["CNI_CONTAINERID"] = containerID
            env["CNI_NETNS"] = netnsPath
            env["CNI_IFNAME"] = ifName
            env["CNI_ARGS"] = cniArgsString
        }
        return env
    }
}

/// The pod facts that become CNI_ARGS and capability arguments.
public struct PodNetworkIdentity: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var namespace: String
    public var uid: String

    public init(id: String, name: String, namespace: String, uid: String) {
        self.id = id
        self.name = name
        self.namespace = namespace
        self.uid = uid
    }

    /// `IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;K8S_POD_INFRA_CONTAINER_ID=…;K8S_POD_UID=…`
    public var cniArgs: [(String, String)] {
        [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", namespace), ("K8S_POD_NAME", name),
         ("K8S_POD_INFRA_CONTAINER_ID", id), ("K8S_POD_UID", uid)]
    }
}

public enum CNICapabilities {
    public static let ingressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
    public static let egressBandwidthAnnotation = "kubernetes.io/egress-bandwidth"
    public static let podAnnotations = "io.kubernetes.cri.pod-annotations"

    /// The capability arguments for a pod: `portMappings` (entries with hostPort 0 dropped),
    /// `bandwidth` from the annotations (rates in bits per second, burst unlimited as the kubelet
    /// sets it), and the pod annotations. Throws `invalidArgument` naming a bad annotation value.
    public static func arguments(portMappings: [PortMapping], annotations: [String: String]) throws(CrispError)
        -> [String: JSONValue]
    {
        var caps: [String: JSONValue] = [:]
        let ports = portMappings.filter { $0.hostPort > 0 }
        for p in ports where !(1...65535).contains(p.hostPort) || !(1...65535).contains(p.containerPort) {
            throw .invalidArgument("port mapping \(p.hostPort)->\(p.containerPort): ports must be in 1…65535")
        }
        if !ports.isEmpty { caps["portMappings"] = .array(ports.map(\.json)) }
        var bw: [String: JSONValue] = [:]
        if let v = annotations[ingressBandwidthAnnotation] {
            bw["ingressRate"] = .int(try bandwidth(v, annotation: ingressBandwidthAnnotation))
            bw["ingressBurst"] = .int(Int64(Int32.max))
        }
        if let v = annotations[egressBandwidthAnnotation] {
            bw["egressRate"] = .int(try bandwidth(v, annotation: egressBandwidthAnnotation))
            bw["egressBurst"] = .int(Int64(Int32.max))
        }
        if !bw.isEmpty { caps["bandwidth"] = .object(bw) }
        if !annotations.isEmpty { caps[podAnnotations] = .object(annotations.mapValues { .string($0) }) }
        return caps
    }

    /// A Kubernetes quantity (`10M`, `1Gi`, `500k`, `1.5M`) as bits per second, within the
    /// kubelet's limits of 1k … 1P.
    public static func bandwidth(_ s: String, annotation: String) throws(CrispError) -> Int64 {
        let suffixes: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1048576), ("Gi", 1073741824), ("Ti", 1099511627776), ("Pi", 1125899906842624),
            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15),
        ]
        var number = s, mult = 1.0
        for (suf, m) in suffixes where s.hasSuffix(suf) {
            number = String(s.dropLast(suf.count)); mult = m
            break
        }
        guard let n = Double(number), n.isFinite, n > 0 else {
            throw .invalidArgument("annotation \(annotation)=\"\(s)\" is not a bandwidth quantity such as 10M")
        }
        let bits = n * mult
        guard bits >= 1e3, bits <= 1e15 else {
            throw .invalidArgument("annotation \(annotation)=\"\(s)\" is outside 1k…1P bits per second")
        }
        return Int64(bits)
    }
}
