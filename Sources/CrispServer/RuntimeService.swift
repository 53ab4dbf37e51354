import CRIAPI
public import CrispService
public import GRPCCore

/// The CRI RuntimeService. Each RPC family lives in its own `RuntimeService+Family.swift`;
/// this file only wires them into the router. Methods not registered here answer UNIMPLEMENTED.
public struct RuntimeService: RegistrableRPCService {
    let info: RuntimeInfoService

    public init(info: RuntimeInfoService) {
        self.info = info
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Runtime_V1_RuntimeService.Method
        router.unary(M.Version.descriptor) { (r: Runtime_V1_VersionRequest, _) in version(r) }
        router.unary(M.Status.descriptor) { (r: Runtime_V1_StatusRequest, _) in status(r) }
        router.unary(M.RuntimeConfig.descriptor) { (r: Runtime_V1_RuntimeConfigRequest, _) in runtimeConfig(r) }
        router.unimplemented(M.descriptors)
    }
}
