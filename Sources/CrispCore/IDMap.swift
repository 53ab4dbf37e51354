/// One line of a user namespace's uid_map or gid_map.
public struct IDMap: Sendable, Equatable, Codable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var length: UInt32
    public init(containerID: UInt32, hostID: UInt32, length: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.length = length
    }
}

/// Whose user namespace a pod's processes run in (the CRI's `NamespaceMode` for `userns_options`).
public enum UserNamespaceMode: Sendable, Equatable { case pod, container, node, target }
