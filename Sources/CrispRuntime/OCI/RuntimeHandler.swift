import CrispOS
import Foundation

/// One configured OCI runtime (`[crisp.runtime.runtimes.NAME]`).
public struct RuntimeHandler: Sendable, Equatable {
    public var name: String
    /// runc or crun binary.
    public var path: String
    /// State directory passed as `--root`.
    public var root: String
    public var systemdCgroup: Bool
    /// Learned at start-up from `RUNTIME features` (mountOptions has "rro").
    public var recursiveReadOnlyMounts = false
    /// Pods with their own user namespace can run: crisp makes the idmapped root filesystem
    /// itself and the runtime joins the pinned namespace, so this is the host's start-up probe
    /// (user namespace + idmapped mount of the storage filesystem), not the runtime's.
    public var userNamespaces = false

    public init(name: String, path: String, root: String, systemdCgroup: Bool = false) {
        self.name = name
        self.path = path
        self.root = root
        self.systemdCgroup = systemdCgroup
    }

    /// Global flags every runtime command gets.
    var globalArguments: [String] {
        var a: [String] = []
        if !root.isEmpty { a += ["--root", root] }
        if systemdCgroup { a.append("--systemd-cgroup") }
        return a
    }
}

extension RuntimeHandler {
    /// What `RUNTIME features` (OCI runtime features document) says the runtime supports; a
    /// runtime without the command (crun 1.8) supports nothing beyond the basics.
    public func probedFeatures() async -> RuntimeHandler {
        var h = self
        let o = Spawn.Options(path: path, arguments: ["features"])
        if let out = try? await Spawn.run(o, timeout: .seconds(10), cap: 1 << 20), out.status == 0 {
            h.recursiveReadOnlyMounts = Self.mountOptions(inFeatures: out.stdout).contains("rro")
        }
        return h
    }

    /// The `mountOptions` of an OCI features document.
    static func mountOptions(inFeatures json: [UInt8]) -> [String] {
        struct Features: Decodable { var mountOptions: [String]? }
        return (try? JSONDecoder().decode(Features.self, from: Data(json)))?.mountOptions ?? []
    }
}
