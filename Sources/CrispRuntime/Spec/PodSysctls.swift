public import CrispCore

/// A pod's sysctls: which are allowed, in what form, merged with the configured defaults. Pure.
///
/// Only sysctls that live in a namespace the pod owns can be set: writing any other would change
/// the host. runc refuses the rest at create ("not in a separate kernel namespace"), long after
/// the pod was accepted, so crisp refuses them at RunPodSandbox, naming the key.
public enum PodSysctls {
    public enum Namespace: String, Sendable { case ipc, net }

    /// runc's list of IPC-namespaced kernel sysctls (libcontainer's validator), plus
    /// `fs.mqueue.*` below.
    static let ipcKeys: Set<String> = [
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
        "kernel.shmmni", "kernel.shm_rmid_forced",
    ]

    /// The namespace `key` (dotted) belongs to; nil for a host-wide sysctl.
    public static func namespace(of key: String) -> Namespace? {
        if ipcKeys.contains(key) || key.hasPrefix("fs.mqueue.") { return .ipc }
        if key.hasPrefix("net.") { return .net }
        return nil
    }

    /// Kubernetes accepts `/` as the separator (`net/ipv4/ip_forward`); runc 1.1 validates and
    /// writes dotted names (it turns every `.` into `/` to find the file). As the kubelet's
    /// `ConvertSysctlVariableToDotsSeparator` does: when the first separator is a slash, slashes
    /// and dots swap, so a dot inside a name (`eth0.100`) survives as a slash.
    public static func normalize(_ key: String) -> String {
        guard let first = key.first(where: { $0 == "." || $0 == "/" }), first == "/" else { return key }
        return String(key.map { $0 == "/" ? "." : ($0 == "." ? "/" : $0) })
    }

    /// Whether `key` (dotted) may be set in a pod with these host namespaces; the reason if not.
    static func refusal(_ key: String, hostNetwork: Bool, hostIPC: Bool) -> String? {
        switch namespace(of: key) {
        case nil: "is not namespaced: setting it would change the host"
        case .ipc? where hostIPC: "belongs to the IPC namespace, and the pod uses the host's"
        case .net? where hostNetwork: "belongs to the network namespace, and the pod uses the host's"
        default: nil
        }
    }

    /// The sysctls every container of the pod gets: `defaults` (the configuration's
    /// `default_sysctls`), then the pod's own over them.
    /// - Throws: `invalidArgument` naming the first pod sysctl that is not allowed.
    /// - Returns: the sysctls, dotted; `skippedDefaults` lists the defaults that do not fit this
    ///   pod (a `net.*` one in a host-network pod), which are left out rather than failing it, as
    ///   CRI-O does.
    public static func effective(pod: [String: String], defaults: [String: String], hostNetwork: Bool,
                                 hostIPC: Bool) throws(CrispError) -> (sysctls: [String: String], skippedDefaults: [String]) {
        var out: [String: String] = [:]
        var skipped: [String] = []
        for (raw, value) in defaults.sorted(by: { $0.key < $1.key }) {
            let key = normalize(raw)
            if refusal(key, hostNetwork: hostNetwork, hostIPC: hostIPC) != nil {
                skipped.append(key)
            } else {
                out[key] = value
            }
        }
        for (raw, value) in pod.sorted(by: { $0.key < $1.key }) {
            let key = normalize(raw)
            guard !key.isEmpty else { throw .invalidArgument("pod sysctl with an empty name") }
            if let why = refusal(key, hostNetwork: hostNetwork, hostIPC: hostIPC) {
                throw .invalidArgument("pod sysctl \"\(raw)\" \(why)")
            }
            out[key] = value
        }
        return (out, skipped)
    }
}
