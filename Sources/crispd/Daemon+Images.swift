import CrispConfig
import CrispServer
import CrispService
import CrispStorage
import Logging

extension Daemon {
    /// The CRI ImageService with its backend, built from `[crisp.image]` over the daemon's
    /// storage. Returns the gRPC service to register and the manager (for SIGHUP reload of
    /// registries.conf and for `shutdown()` at exit).
    func makeImageService(storage: Storage) throws -> (service: ImageService, manager: ImageManager) {
        let manager = try ImageManager.make(config: config, storage: storage, logger: Logger(label: "image"))
        return (ImageService(images: manager), manager)
    }
}
