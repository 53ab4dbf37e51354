import CRIAPI
import CrispCore
import CrispService
import Foundation

/// RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox.
extension RuntimeService {
    func runPodSandbox(_ r: Runtime_V1_RunPodSandboxRequest) async throws -> Runtime_V1_RunPodSandboxResponse {
        let c = r.config
        var req = RunSandboxRequest(metadata: .init(name: c.metadata.name, uid: c.metadata.uid,
                                                    namespace: c.metadata.namespace, attempt: c.metadata.attempt))
        req.hostname = c.hostname
        req.logDirectory = c.logDirectory
        req.labels = c.labels
        req.annotations = c.annotations
        req.runtimeHandler = r.runtimeHandler
        let ns = c.linux.securityContext.namespaceOptions
        req.hostNetwork = ns.network == .node
        req.hostIPC = ns.ipc == .node
        req.hostPID = ns.pid == .node
        req.sharedPID = ns.pid == .pod
        req.cgroupParent = c.linux.cgroupParent
        req.sysctls = c.linux.sysctls
        let sc = c.linux.securityContext
        req.privileged = sc.privileged
        req.seccomp = try SecurityProfiles.request(has: sc.hasSeccomp, sc.seccomp, deprecated: sc.seccompProfilePath,
                                                  field: "pod seccomp")
        req.appArmor = try SecurityProfiles.request(has: sc.hasApparmor, sc.apparmor, deprecated: "", field: "pod apparmor")
        req.selinux = SecurityProfiles.selinux(has: sc.hasSelinuxOptions, sc.selinuxOptions)
        if ns.hasUsernsOptions {
            let u = ns.usernsOptions
            req.userNamespaceMode = switch u.mode {
            case .pod: .pod
            case .container: .container
            case .target: .target
            default: .node
            }
            req.uidMappings = u.uids.map { IDMap(containerID: $0.containerID, hostID: $0.hostID, length: $0.length) }
            req.gidMappings = u.gids.map { IDMap(containerID: $0.containerID, hostID: $0.hostID, length: $0.length) }
        }
        req.dnsServers = c.dnsConfig.servers
        req.dnsSearches = c.dnsConfig.searches
        req.dnsOptions = c.dnsConfig.options
        req.portMappings = c.portMappings.map { pm in
            let proto: PortMapping.TransportProtocol = pm.protocol == .udp ? .udp : (pm.protocol == .sctp ? .sctp : .tcp)
            return PortMapping(hostPort: Int(pm.hostPort), containerPort: Int(pm.containerPort), protocol: proto, hostIP: pm.hostIp)
        }
        let s = try await sandboxes.run(req)
        var out = Runtime_V1_RunPodSandboxResponse()
        out.podSandboxID = s.id
        return out
    }

    func stopPodSandbox(_ r: Runtime_V1_StopPodSandboxRequest) async throws -> Runtime_V1_StopPodSandboxResponse {
        try await containers.stopPod(r.podSandboxID)
        return Runtime_V1_StopPodSandboxResponse()
    }

    func removePodSandbox(_ r: Runtime_V1_RemovePodSandboxRequest) async throws -> Runtime_V1_RemovePodSandboxResponse {
        try await containers.removePod(r.podSandboxID)
        return Runtime_V1_RemovePodSandboxResponse()
    }

    /// In-place pod resize: the kubelet has already resized the pod's cgroup itself and tells the
    /// runtime afterwards. CRI-O only passes it on to NRI plugins; crisp has none, so the call
    /// checks that the pod exists and succeeds.
    func updatePodSandboxResources(_ r: Runtime_V1_UpdatePodSandboxResourcesRequest) async throws -> Runtime_V1_UpdatePodSandboxResourcesResponse {
        _ = try await sandboxes.status(r.podSandboxID)
        return Runtime_V1_UpdatePodSandboxResourcesResponse()
    }

    func podSandboxStatus(_ r: Runtime_V1_PodSandboxStatusRequest) async throws -> Runtime_V1_PodSandboxStatusResponse {
        let s = try await sandboxes.status(r.podSandboxID)
        var out = Runtime_V1_PodSandboxStatusResponse()
        out.status = Self.criStatus(s)
        if r.verbose {
            // Built by the JSON encoder, not by interpolation: paths may hold quotes.
            var info: [String: Any] = ["pid": s.infraPID, "runtimeHandler": s.runtimeHandler, "runDirectory": s.runDirectory,
                                       "infraContainer": s.hasInfra]
            for (key, path) in [("netns", s.netnsPath), ("ipcns", s.ipcnsPath), ("utsns", s.utsnsPath)] {
                if let path { info[key] = path }
            }
            let data = (try? JSONSerialization.data(withJSONObject: info, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            out.info = ["info": String(decoding: data, as: UTF8.self)]
        }
        return out
    }

    static func criStatus(_ s: Sandbox) -> Runtime_V1_PodSandboxStatus {
        var st = Runtime_V1_PodSandboxStatus()
        st.id = s.id
        st.metadata = Self.metadata(s)
        st.state = s.state == .ready ? .sandboxReady : .sandboxNotready
        st.createdAt = s.createdAt
        st.labels = s.labels
        st.annotations = s.annotations
        st.runtimeHandler = s.runtimeHandler
        var options = Runtime_V1_NamespaceOption()
        options.network = s.hostNetwork ? .node : .pod
        options.ipc = s.hostIPC ? .node : .pod
        options.pid = s.hostPID ? .node : (s.sharedPID ? .pod : .container)
        st.linux.namespaces.options = options
        // Host-network pods have no pod IP of their own; the kubelet uses the node's.
        var net = Runtime_V1_PodSandboxNetworkStatus()
        if let first = s.ips.first {
            net.ip = first
            net.additionalIps = s.ips.dropFirst().map { ip in
                var p = Runtime_V1_PodIP()
                p.ip = ip
                return p
            }
        }
        st.network = net
        return st
    }

    func listPodSandbox(_ r: Runtime_V1_ListPodSandboxRequest) async throws -> Runtime_V1_ListPodSandboxResponse {
        var filter = SandboxFilter()
        if r.hasFilter {
            filter.id = r.filter.id.isEmpty ? nil : r.filter.id
            if r.filter.hasState { filter.state = r.filter.state.state == .sandboxReady ? .ready : .notReady }
            filter.labels = r.filter.labelSelector
        }
        var out = Runtime_V1_ListPodSandboxResponse()
        out.items = await sandboxes.list(filter).map { s in
            var p = Runtime_V1_PodSandbox()
            p.id = s.id
            p.metadata = Self.metadata(s)
            p.state = s.state == .ready ? .sandboxReady : .sandboxNotready
            p.createdAt = s.createdAt
            p.labels = s.labels
            p.annotations = s.annotations
            p.runtimeHandler = s.runtimeHandler
            return p
        }
        return out
    }

    static func metadata(_ s: Sandbox) -> Runtime_V1_PodSandboxMetadata {
        var m = Runtime_V1_PodSandboxMetadata()
        m.name = s.metadata.name
        m.uid = s.metadata.uid
        m.namespace = s.metadata.namespace
        m.attempt = s.metadata.attempt
        return m
    }
}
