import CRIAPI
public import GRPCCore

/// The CRI ImageService. Each RPC family lives in its own `ImageService+Family.swift`.
public struct ImageService: RegistrableRPCService {
    public init() {}

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.unimplemented(Runtime_V1_ImageService.Method.descriptors)
    }
}
