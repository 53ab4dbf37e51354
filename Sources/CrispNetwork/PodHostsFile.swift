/// The /etc/hosts a pod sandbox gets: loopback entries and one line per pod IP with the pod's
/// hostname (the layout the kubelet writes for its managed hosts files). Pure.
public enum PodHostsFile {
    public static func contents(hostname: String, podIPs: [String], extraEntries: [(ip: String, names: [String])] = []) -> String {
        var lines = [
            "# Kubernetes-managed hosts file (written by crisp).",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "fe00::0\tip6-mcastprefix",
            "fe00::1\tip6-allnodes",
            "fe00::2\tip6-allrouters",
        ]
        let host = hostname.filter { !$0.isWhitespace }
        if !host.isEmpty {
            for ip in podIPs where !ip.isEmpty { lines.append("\(ip)\t\(host)") }
        }
        for e in extraEntries where !e.ip.isEmpty && !e.names.isEmpty {
            lines.append("\(e.ip)\t\(e.names.joined(separator: " "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
