import CRIAPI
import CrispCore
import CrispService
import Foundation

/// ImageStatus and ListImages.
extension ImageService {
    func imageStatus(_ r: Runtime_V1_ImageStatusRequest, _ images: ImageManager) async throws -> Runtime_V1_ImageStatusResponse {
        var out = Runtime_V1_ImageStatusResponse()
        // CRI: an unknown image is an empty response, not an error.
        guard !r.image.image.isEmpty, let info = try await images.status(r.image.image) else { return out }
        out.image = Self.message(info)
        if r.verbose {
            // crictl parses each value as JSON.
            let config = String(decoding: info.config.isEmpty ? Array("{}".utf8) : info.config, as: UTF8.self)
            out.info = ["info": "{\"imageSpec\":\(config)}"]
        }
        return out
    }

    func listImages(_ r: Runtime_V1_ListImagesRequest, _ images: ImageManager) async throws -> Runtime_V1_ListImagesResponse {
        var out = Runtime_V1_ListImagesResponse()
        out.images = try await images.list(filter: r.hasFilter ? r.filter.image.image : nil).map(Self.message)
        return out
    }

    static func message(_ i: ImageInfo) -> Runtime_V1_Image {
        var m = Runtime_V1_Image()
        m.id = i.id.description
        m.repoTags = i.repoTags
        m.repoDigests = i.repoDigests
        m.size = i.size
        m.pinned = i.pinned
        switch i.user {
        case .uid(let uid):
            var v = Runtime_V1_Int64Value()
            v.value = uid
            m.uid = v
        case .name(let name): m.username = name
        case .none: break
        }
        var spec = Runtime_V1_ImageSpec()
        spec.image = i.id.description
        m.spec = spec
        return m
    }
}
