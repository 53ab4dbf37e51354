import CRIAPI
import CrispCore
import CrispService

/// PullImage: reference and credentials in, image id out.
extension ImageService {
    func pullImage(_ r: Runtime_V1_PullImageRequest, _ images: ImageManager) async throws -> Runtime_V1_PullImageResponse {
        guard !r.image.image.isEmpty else { throw CrispError.invalidArgument("PullImage: image is empty") }
        let auth = r.hasAuth ? RegistryAuth(username: r.auth.username, password: r.auth.password, auth: r.auth.auth,
                                            identityToken: r.auth.identityToken, registryToken: r.auth.registryToken) : nil
        var out = Runtime_V1_PullImageResponse()
        out.imageRef = try await images.pull(r.image.image, auth: auth).description
        return out
    }
}
