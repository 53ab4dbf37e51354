public import CrispCore
import CrispNetwork
import CrispOS

extension SandboxService {
    /// Checks a PortForward request before a URL is handed out.
    public func validatePortForward(_ id: String) throws(CrispError) -> String {
        let s = try lookup(id)
        guard s.state == .ready else { throw .failedPrecondition("pod sandbox \(s.id) is not ready") }
        return s.id
    }

    /// A TCP connection to 127.0.0.1:`port` as the pod sees it: inside its network namespace, or
    /// on the host for a host-network pod. The caller owns the returned descriptor.
    public func dialPort(_ id: String, port: Int) async throws(CrispError) -> Int32 {
        let s = try lookup(id)
        guard s.state == .ready else { throw .failedPrecondition("pod sandbox \(s.id) is not ready") }
        if s.hostNetwork || s.netnsPath == nil {
            return try TCPLoopback.connect(port: port)
        }
        guard let pinns = namespaces?.pinnsPath else {
            throw .failedPrecondition("port forwarding into pod \(s.id) needs crisp-pinns, which this service was not given")
        }
        return try await PortDialer(pinnsPath: pinns).dial(netnsPath: s.netnsPath!, port: port)
    }
}
