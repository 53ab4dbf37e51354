/// A hostPort → containerPort mapping from the pod sandbox config, as the `portMappings`
/// capability carries it.
public struct PortMapping: Sendable, Equatable, Codable {
    public enum TransportProtocol: String, Sendable, Codable { case tcp, udp, sctp }
    public var hostPort: Int
    public var containerPort: Int
    public var `protocol`: TransportProtocol
    /// Empty means every host address.
    public var hostIP: String

    public init(hostPort: Int, containerPort: Int, protocol: TransportProtocol = .tcp, hostIP: String = "") {
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostIP = hostIP
    }
}
