public import CrispConfig
import CrispCore
import CrispImage
public import CrispStorage
public import Logging
import Foundation

extension ImageManager {
    /// Builds the image manager from `[crisp.image]`: registries.conf (+ registries.conf.d),
    /// the signature policy (a missing file accepts every image, with a warning), the global
    /// auth file, max_parallel_downloads, pause_image; temporary downloads under
    /// `<root>/image-downloads`. Throws `CrispError` naming the file for an invalid
    /// registries.conf or policy (including unsupported policy requirement types).
    public static func make(config: CrispConfiguration, storage: Storage, logger: Logger) throws -> ImageManager {
        let image = config.image
        let registries = try RegistriesConfiguration.load(path: image.registriesConf)
        var policy: SignaturePolicy?
        if FileManager.default.fileExists(atPath: image.signaturePolicy) {
            policy = try SignaturePolicy.load(path: image.signaturePolicy)
        } else {
            logger.warning("signature policy file not found: every image is accepted", metadata: ["path": "\(image.signaturePolicy)"])
        }
        let client = RegistryClient(options: RegistryClientOptions(), logger: logger)
        let puller = ImagePuller(storage: storage, client: client,
                                 settings: PullerSettings(registries: registries, policy: policy, authFile: image.globalAuthFile,
                                                          maxParallelDownloads: image.maxParallelDownloads,
                                                          temporaryDirectory: config.root + "/image-downloads"),
                                 logger: logger)
        return ImageManager(storage: storage, puller: puller, registries: registries, pauseImage: image.pauseImage, logger: logger)
    }

    /// Reloads registries.conf (SIGHUP). On error the previous configuration stays and the
    /// error is thrown for the caller to log.
    public func reloadRegistries(path: String) throws {
        reloadRegistries(try RegistriesConfiguration.load(path: path))
        logger.info("registries configuration reloaded", metadata: ["path": "\(path)"])
    }

    /// Closes the registry client's connections; call once at shutdown.
    public func shutdown() async {
        try? await puller.client.shutdown()
    }
}
