import CrispConfig
import CrispStorage
import Logging

extension Daemon {
    /// Opens the layer/image/container store under `root/storage` with its own exclusive lock;
    /// crash leftovers are cleaned (and logged) here, before any RPC is served.
    func openStorage() async throws -> Storage {
        try await Storage.open(StorageOptions(root: config.root + "/storage", runRoot: config.runRoot + "/storage",
                                              driver: config.storageDriver, driverOptions: config.storageOptions,
                                              sync: StorageOptions.SyncMode(rawValue: config.storageSync) ?? .none),
                               logger: Logger(label: "storage"))
    }
}
