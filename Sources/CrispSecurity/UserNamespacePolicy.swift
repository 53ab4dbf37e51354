public import CrispCore


/// A pod's `userns_options`, checked against the CRI's rules (KEP-127).
public enum UserNamespacePolicy {
    public typealias Mode = UserNamespaceMode

    /// - Returns: nil for the host's user namespace (NODE, or no options at all); the uid and
    ///   gid mapping for POD.
    /// - Throws: `invalidArgument` naming what is wrong: CONTAINER or TARGET mode, not exactly
    ///   one uid and one gid mapping, a mapping that leaves container id 0 unmapped, an empty or
    ///   overflowing range, mappings given with NODE, or a POD user namespace together with the
    ///   host's network, PID or IPC namespace (which it cannot own).
    public static func validate(mode: Mode, uids: [IDMap], gids: [IDMap], hostNetwork: Bool, hostPID: Bool,
                                hostIPC: Bool) throws(CrispError) -> (uid: IDMap, gid: IDMap)? {
        switch mode {
        case .node:
            guard uids.isEmpty, gids.isEmpty else {
                throw .invalidArgument("user namespace mode NODE takes no uid/gid mappings (got \(uids.count) and \(gids.count))")
            }
            return nil
        case .container, .target:
            throw .invalidArgument("user namespace mode \(mode == .container ? "CONTAINER" : "TARGET") is not supported; use POD or NODE")
        case .pod:
            for (kind, maps) in [("uid", uids), ("gid", gids)] {
                guard maps.count == 1 else {
                    throw .invalidArgument("a POD user namespace needs exactly one \(kind) mapping, got \(maps.count)")
                }
                let m = maps[0]
                guard m.length > 0, UInt64(m.hostID) + UInt64(m.length) <= UInt64(UInt32.max) + 1,
                      UInt64(m.containerID) + UInt64(m.length) <= UInt64(UInt32.max) + 1 else {
                    throw .invalidArgument("\(kind) mapping \(m.containerID) \(m.hostID) \(m.length) is empty or overflows")
                }
                guard m.containerID == 0 else {
                    throw .invalidArgument("\(kind) mapping \(m.containerID) \(m.hostID) \(m.length) leaves container id 0 unmapped")
                }
            }
            for (name, host) in [("network", hostNetwork), ("PID", hostPID), ("IPC", hostIPC)] where host {
                throw .invalidArgument("a POD user namespace cannot be combined with the host's \(name) namespace")
            }
            return (uids[0], gids[0])
        }
    }
}
