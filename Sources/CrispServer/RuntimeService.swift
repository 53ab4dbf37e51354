import CRIAPI
public import CrispService
public import GRPCCore

/// The CRI RuntimeService. Each RPC family lives in its own `RuntimeService+Family.swift`;
/// this file only wires them into the router. Methods not registered here answer UNIMPLEMENTED.
public struct RuntimeService: RegistrableRPCService {
    let info: RuntimeInfoService
    let sandboxes: SandboxService

    public init(info: RuntimeInfoService, sandboxes: SandboxService) {
        self.info = info
        self.sandboxes = sandboxes
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Runtime_V1_RuntimeService.Method
        router.unary(M.Version.descriptor) { (r: Runtime_V1_VersionRequest, _) in version(r) }
        router.unary(M.Status.descriptor) { (r: Runtime_V1_StatusRequest, _) in status(r) }
        router.unary(M.RuntimeConfig.descriptor) { (r: Runtime_V1_RuntimeConfigRequest, _) in runtimeConfig(r) }
        router.unary(M.RunPodSandbox.descriptor) { (r: Runtime_V1_RunPodSandboxRequest, _) in try await runPodSandbox(r) }
        router.unary(M.StopPodSandbox.descriptor) { (r: Runtime_V1_StopPodSandboxRequest, _) in try await stopPodSandbox(r) }
        router.unary(M.RemovePodSandbox.descriptor) { (r: Runtime_V1_RemovePodSandboxRequest, _) in try await removePodSandbox(r) }
        router.unary(M.PodSandboxStatus.descriptor) { (r: Runtime_V1_PodSandboxStatusRequest, _) in try await podSandboxStatus(r) }
        router.unary(M.ListPodSandbox.descriptor) { (r: Runtime_V1_ListPodSandboxRequest, _) in try await listPodSandbox(r) }
        router.unimplemented(M.descriptors)
    }
}
