/// One configured OCI runtime (`[crisp.runtime.runtimes.NAME]`).
public struct RuntimeHandler: Sendable, Equatable {
    public var name: String
    /// runc or crun binary.
    public var path: String
    /// State directory passed as `--root`.
    public var root: String
    public var systemdCgroup: Bool

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
