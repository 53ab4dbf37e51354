import CRIAPI
import CrispCore
import CrispImage
import CrispService

/// PullImage: reference and credentials in, image id out.
extension ImageService {
    func pullImage(_ r: Runtime_V1_PullImageRequest, _ images: ImageManager) async throws -> Runtime_V1_PullImageResponse {
        guard !r.image.image.isEmpty else { throw CrispError.invalidArgument("PullImage: image is empty") }
        var credentials: RegistryCredentials?
        if r.hasAuth {
            credentials = try RegistryCredentials(username: r.auth.username, password: r.auth.password, auth: r.auth.auth,
                                                  identityToken: r.auth.identityToken, registryToken: r.auth.registryToken)
        }
        var out = Runtime_V1_PullImageResponse()
        out.imageRef = try await images.pull(r.image.image, credentials: credentials).description
        return out
    }
}
