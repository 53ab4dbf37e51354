import CRIAPI
import CrispCore
import CrispService

/// RemoveImage: idempotent; see `ImageManager.remove` for tag and in-use semantics.
extension ImageService {
    func removeImage(_ r: Runtime_V1_RemoveImageRequest, _ images: ImageManager) async throws -> Runtime_V1_RemoveImageResponse {
        guard !r.image.image.isEmpty else { throw CrispError.invalidArgument("RemoveImage: image is empty") }
        try await images.remove(r.image.image)
        return Runtime_V1_RemoveImageResponse()
    }
}
