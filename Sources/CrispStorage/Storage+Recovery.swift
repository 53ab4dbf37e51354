import CrispCore
import CrispOS
import Logging

extension Storage {
    /// Finds and removes what a crash left behind: stray mounts, incomplete layers (and any
    /// container row on them), layer directories without a row, dangling short links.
    func recover() async throws {
        var cleaned: [String] = []
        // Mounts first: nothing is legitimately mounted before this process mounts it.
        for m in (try? Mounts.mountPoints(under: driver.home)) ?? [] {
            try? Mounts.unmount(m, detach: true)
            cleaned.append("stray mount \(m)")
        }
        for m in (try? Mounts.mountPoints(under: options.runRoot)) ?? [] {
            try? Mounts.unmount(m, detach: true)
            cleaned.append("stray mount \(m)")
        }
        do {
            try metadata.markDescendantsIncomplete()
            for id in try metadata.incompleteLayers() {
                try driver.removeLayer(id)
                try metadata.deleteLayerRows([id])
                cleaned.append("incomplete layer \(id)")
            }
            let known = try metadata.allLayerIDs()
            for name in try driver.layerIDsOnDisk() where !known.contains(name) {
                try driver.removeLayer(LayerID(uncheckedRawValue: name))
                cleaned.append("orphan layer directory \(name)")
            }
            if let overlay = driver as? OverlayDriver {
                cleaned += overlay.removeDanglingLinks().map { "dangling link l/\($0)" }
            }
        } catch {
            throw storageError(error, "cleaning up storage at \(options.root) after a crash")
        }
        for item in cleaned {
            logger.notice("storage start-up clean-up removed \(item)")
        }
        if !cleaned.isEmpty {
            logger.notice("storage start-up clean-up done", metadata: ["removed": "\(cleaned.count)"])
        }
        lastRecovery = cleaned
    }
}
