import Foundation
import CrispConfig
import CrispStorage
import Logging

extension Daemon {
    /// Opens the layer/image/container store under `root/storage` with its own exclusive lock;
    /// crash leftovers are cleaned (and logged) here, before any RPC is served.
    func openStorage() async throws -> Storage {
        var options = StorageOptions(root: config.root + "/storage", runRoot: config.runRoot + "/storage",
                                     driver: config.storageDriver, driverOptions: config.storageOptions,
                                     sync: config.storageSync == .filesystem ? .filesystem : .none)
        // CRISP_BOOT_ID stands in for the kernel's boot id: the power-loss tests start a crispd on
        // a copy of a disk "after a reboot" without rebooting the machine.
        options.bootID = ProcessInfo.processInfo.environment["CRISP_BOOT_ID"]
        return try await Storage.open(options, logger: Logger(label: "storage"))
    }
}
