import CRIAPI
public import CrispService
public import GRPCCore
import SwiftProtobuf

/// The CRI ImageService. Each RPC family lives in its own `ImageService+Family.swift`; this
/// file only wires them into the router. Without an `ImageManager` every method answers
/// UNIMPLEMENTED.
public struct ImageService: RegistrableRPCService {
    let images: ImageManager?

    public init() { images = nil }

    public init(images: ImageManager) { self.images = images }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias M = Runtime_V1_ImageService.Method
        if let images {
            router.unary(M.PullImage.descriptor) { (r: Runtime_V1_PullImageRequest, _) in try await pullImage(r, images) }
            router.unary(M.ImageStatus.descriptor) { (r: Runtime_V1_ImageStatusRequest, _) in try await imageStatus(r, images) }
            router.unary(M.ListImages.descriptor) { (r: Runtime_V1_ListImagesRequest, _) in try await listImages(r, images) }
            router.unary(M.RemoveImage.descriptor) { (r: Runtime_V1_RemoveImageRequest, _) in try await removeImage(r, images) }
            router.unary(M.ImageFsInfo.descriptor) { (r: Runtime_V1_ImageFsInfoRequest, _) in try await imageFsInfo(r, images) }
            router.pagedList(M.StreamImages.descriptor, items: { (r: Runtime_V1_StreamImagesRequest) in
                var list = Runtime_V1_ListImagesRequest()
                if r.hasFilter { list.filter = r.filter }
                return try await listImages(list, images).images
            }, page: { items in Runtime_V1_StreamImagesResponse.with { $0.images = items } })
        }
        router.unimplemented(M.descriptors)
    }
}
