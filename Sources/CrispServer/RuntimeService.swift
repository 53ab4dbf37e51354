import CRIAPI
public import CrispService
public import GRPCCore

/// The CRI RuntimeService. Each RPC family lives in its own `RuntimeService+Family.swift`;
/// this file only wires them into the router. Methods not registered here answer UNIMPLEMENTED.
public struct RuntimeService: RegistrableRPCService {
    let info: RuntimeInfoService
    let sandboxes: SandboxService
    let containers: ContainerService
    /// Serves the URLs of Exec, Attach and PortForward; nil answers them Unavailable.
    let streaming: (any StreamURLIssuer)?
    var events: EventHub { containers.events }

    public init(info: RuntimeInfoService, sandboxes: SandboxService, containers: ContainerService, streaming: (any StreamURLIssuer)? = nil) {
        self.info = info
        self.sandboxes = sandboxes
        self.containers = containers
        self.streaming = streaming
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Runtime_V1_RuntimeService.Method
        router.unary(M.Version.descriptor) { (r: Runtime_V1_VersionRequest, _) in version(r) }
        router.unary(M.Status.descriptor) { (r: Runtime_V1_StatusRequest, _) in status(r) }
        router.unary(M.RuntimeConfig.descriptor) { (r: Runtime_V1_RuntimeConfigRequest, _) in runtimeConfig(r) }
        router.unary(M.UpdateRuntimeConfig.descriptor) { (r: Runtime_V1_UpdateRuntimeConfigRequest, _) in updateRuntimeConfig(r) }
        router.unary(M.RunPodSandbox.descriptor) { (r: Runtime_V1_RunPodSandboxRequest, _) in try await runPodSandbox(r) }
        router.unary(M.StopPodSandbox.descriptor) { (r: Runtime_V1_StopPodSandboxRequest, _) in try await stopPodSandbox(r) }
        router.unary(M.RemovePodSandbox.descriptor) { (r: Runtime_V1_RemovePodSandboxRequest, _) in try await removePodSandbox(r) }
        router.unary(M.PodSandboxStatus.descriptor) { (r: Runtime_V1_PodSandboxStatusRequest, _) in try await podSandboxStatus(r) }
        router.unary(M.CheckpointContainer.descriptor) { (r: Runtime_V1_CheckpointContainerRequest, _) in try await checkpointContainer(r) }
        router.unary(M.UpdatePodSandboxResources.descriptor) { (r: Runtime_V1_UpdatePodSandboxResourcesRequest, _) in
            try await updatePodSandboxResources(r)
        }
        router.unary(M.ListPodSandbox.descriptor) { (r: Runtime_V1_ListPodSandboxRequest, _) in try await listPodSandbox(r) }
        router.unary(M.CreateContainer.descriptor) { (r: Runtime_V1_CreateContainerRequest, _) in try await createContainer(r) }
        router.unary(M.StartContainer.descriptor) { (r: Runtime_V1_StartContainerRequest, _) in try await startContainer(r) }
        router.unary(M.StopContainer.descriptor) { (r: Runtime_V1_StopContainerRequest, _) in try await stopContainer(r) }
        router.unary(M.RemoveContainer.descriptor) { (r: Runtime_V1_RemoveContainerRequest, _) in try await removeContainer(r) }
        router.unary(M.ContainerStatus.descriptor) { (r: Runtime_V1_ContainerStatusRequest, _) in try await containerStatus(r) }
        router.unary(M.ListContainers.descriptor) { (r: Runtime_V1_ListContainersRequest, _) in try await listContainers(r) }
        router.unary(M.ExecSync.descriptor) { (r: Runtime_V1_ExecSyncRequest, _) in try await execSync(r) }
        router.unary(M.Exec.descriptor) { (r: Runtime_V1_ExecRequest, _) in try await exec(r) }
        router.unary(M.Attach.descriptor) { (r: Runtime_V1_AttachRequest, _) in try await attach(r) }
        router.unary(M.PortForward.descriptor) { (r: Runtime_V1_PortForwardRequest, _) in try await portForward(r) }
        router.unary(M.ContainerStats.descriptor) { (r: Runtime_V1_ContainerStatsRequest, _) in try await containerStats(r) }
        router.unary(M.ListContainerStats.descriptor) { (r: Runtime_V1_ListContainerStatsRequest, _) in try await listContainerStats(r) }
        router.unary(M.UpdateContainerResources.descriptor) { (r: Runtime_V1_UpdateContainerResourcesRequest, _) in try await updateContainerResources(r) }
        router.unary(M.ReopenContainerLog.descriptor) { (r: Runtime_V1_ReopenContainerLogRequest, _) in try await reopenContainerLog(r) }
        router.unary(M.PodSandboxStats.descriptor) { (r: Runtime_V1_PodSandboxStatsRequest, _) in try await podSandboxStats(r) }
        router.unary(M.ListPodSandboxStats.descriptor) { (r: Runtime_V1_ListPodSandboxStatsRequest, _) in try await listPodSandboxStats(r) }
        registerContainerEvents(with: &router)
        router.unary(M.ListMetricDescriptors.descriptor) { (r: Runtime_V1_ListMetricDescriptorsRequest, _) in try await listMetricDescriptors(r) }
        router.unary(M.ListPodSandboxMetrics.descriptor) { (r: Runtime_V1_ListPodSandboxMetricsRequest, _) in try await listPodSandboxMetrics(r) }
        registerStreams(with: &router)
        router.unimplemented(M.descriptors)
    }
}
