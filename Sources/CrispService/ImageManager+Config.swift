public import CrispConfig
public import CrispCore
import CrispImage
public import CrispStorage
public import Logging
import Foundation

extension ImageManager {
    /// Builds the image manager from `[crisp.image]`: registries.conf (+ registries.conf.d),
    /// the signature policy, the global auth file, max_parallel_downloads,
    /// pull_progress_timeout, allow_foreign_layer_urls, pause_image; temporary downloads under
    /// `<root>/image-downloads`. Throws `CrispError` naming the file for an invalid
    /// registries.conf or policy (including unsupported policy requirement types). A missing
    /// policy file does not stop the daemon, but every pull fails with `.failedPrecondition`
    /// until the file exists (as containers/image refuses to pull without one).
    public static func make(config: CrispConfiguration, storage: Storage, logger: Logger) throws(CrispError) -> ImageManager {
        let image = config.image
        let registries = try RegistriesConfiguration.load(path: image.registriesConf)
        var policy: SignaturePolicy?
        let policyMissing = !FileManager.default.fileExists(atPath: image.signaturePolicy)
        if policyMissing {
            logger.warning("signature policy file not found: pulls will fail until it exists",
                           metadata: ["path": "\(image.signaturePolicy)"])
        } else {
            policy = try SignaturePolicy.load(path: image.signaturePolicy)
        }
        var options = RegistryClientOptions()
        options.progressTimeout = .seconds(image.pullProgressTimeout)
        let client = RegistryClient(options: options, logger: logger)
        let puller = ImagePuller(storage: storage, client: client,
                                 settings: PullerSettings(registries: registries, policy: policy, authFile: image.globalAuthFile,
                                                          maxParallelDownloads: image.maxParallelDownloads,
                                                          temporaryDirectory: config.root + "/image-downloads",
                                                          allowForeignLayerURLs: image.allowForeignLayerURLs),
                                 logger: logger)
        return ImageManager(storage: storage, puller: puller, registries: registries, pauseImage: image.pauseImage,
                            missingPolicyPath: policyMissing ? image.signaturePolicy : nil, logger: logger)
    }

    /// Reloads registries.conf (SIGHUP). On error the previous configuration stays and the
    /// error is thrown for the caller to log.
    public func reloadRegistries(path: String) throws(CrispError) {
        reloadRegistries(try RegistriesConfiguration.load(path: path))
        logger.info("registries configuration reloaded", metadata: ["path": "\(path)"])
    }

    /// Closes the registry client's connections; call once at shutdown.
    public func shutdown() async {
        try? await puller.client.shutdown()
    }
}
