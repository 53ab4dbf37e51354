import CRIAPI
import CrispCore
import CrispService

/// Version, Status and RuntimeConfig: what the runtime is and whether it is ready.
extension RuntimeService {
    static let runtimeName = "crisp"
    static let runtimeAPIVersion = "v1"

    func version(_ request: Runtime_V1_VersionRequest) -> Runtime_V1_VersionResponse {
        var r = Runtime_V1_VersionResponse()
        r.version = CrispVersion.string
        r.runtimeName = Self.runtimeName
        r.runtimeVersion = CrispVersion.string
        r.runtimeApiVersion = Self.runtimeAPIVersion
        return r
    }

    func status(_ request: Runtime_V1_StatusRequest) -> Runtime_V1_StatusResponse {
        var r = Runtime_V1_StatusResponse()
        r.status.conditions = info.conditions().map { c in
            var rc = Runtime_V1_RuntimeCondition()
            rc.type = c.type
            rc.status = c.status
            rc.reason = c.reason
            rc.message = c.message
            return rc
        }
        r.runtimeHandlers = info.advertisedHandlers.map { h in
            var out = Runtime_V1_RuntimeHandler()
            out.name = h.name
            out.features.recursiveReadOnlyMounts = h.recursiveReadOnlyMounts
            out.features.userNamespaces = h.userNamespaces
            return out
        }
        r.features.supplementalGroupsPolicy = true
        if request.verbose {
            // crictl parses every value of this map as JSON.
            r.info = ["config": info.configurationJSON()]
            if let streaming {
                r.info["streaming"] = #"{"url":"# + "\"" + streaming.baseURL + "\"" + #","connections":"# + String(streaming.connectionCount) + "}"
            }
        }
        return r
    }

    func runtimeConfig(_ request: Runtime_V1_RuntimeConfigRequest) -> Runtime_V1_RuntimeConfigResponse {
        var r = Runtime_V1_RuntimeConfigResponse()
        var linux = Runtime_V1_LinuxRuntimeConfiguration()
        linux.cgroupDriver = info.cgroupDriver == .systemd ? .systemd : .cgroupfs
        r.linux = linux
        return r
    }

    /// The kubelet sends the node's pod CIDR here. As with CRI-O, the network comes from the CNI
    /// configuration files (host-local ranges), so there is nothing to change; the call succeeds.
    func updateRuntimeConfig(_ request: Runtime_V1_UpdateRuntimeConfigRequest) -> Runtime_V1_UpdateRuntimeConfigResponse {
        Runtime_V1_UpdateRuntimeConfigResponse()
    }
}
