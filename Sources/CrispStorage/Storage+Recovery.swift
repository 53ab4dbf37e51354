import CrispCore
import CrispOS
import Logging

extension Storage {
    /// Finds and removes what a crash left behind: stray mounts, incomplete layers (and any
    /// container row on them), layer directories without a row, dangling short links. Mounts
    /// that a container record accounts for (a container still running while the daemon
    /// restarted) are kept and their reference counts continue.
    func recover() async throws {
        var cleaned: [String] = []
        let kept: [String]
        do { kept = try restoreRecordedMounts(&cleaned) } catch {
            throw storageError(error, "restoring the container mounts recorded in \(options.root)")
        }
        // A mount at or below a kept rootfs belongs to it; anything else under the driver's
        // directory is stray.
        for m in (try? Mounts.mountPoints(under: driver.home)) ?? []
        where !kept.contains(where: { m == $0 || m.hasPrefix($0 + "/") }) {
            try? Mounts.unmount(m, detach: true)
            cleaned.append("stray mount \(m)")
        }
        for m in (try? Mounts.mountPoints(under: options.runRoot)) ?? [] {
            try? Mounts.unmount(m, detach: true)
            cleaned.append("stray mount \(m)")
        }
        do {
            // Layers stored without a sync under another boot may have reached the disk in part
            // (the machine stopped before writeback): they cannot be trusted. Under this boot the
            // page cache still holds them (crispd itself stopped), so a sync point makes them safe.
            let unsynced = try metadata.unsyncedLayers()
            let unsafe = unsynced.filter { $0.boot != bootID }.map(\.id)
            if unsafe.count < unsynced.count {
                try syncFilesystem(of: options.root)
                try metadata.markSynced(unsynced.filter { $0.boot == bootID }.map(\.id))
            }
            let present = Set(try driver.layerIDsOnDisk())
            let lost = Array(Set(try metadata.layers().map(\.id).filter { !present.contains($0.rawValue) } + unsafe))
            if !lost.isEmpty {
                let dropped = try metadata.dropLost(lost)
                logger.warning("storage start-up: layers that were not (or not wholly) on disk when the machine stopped are removed, with what uses them; the images will be pulled again",
                               metadata: ["layers": "\(lost.map(\.rawValue))", "images": "\(dropped.images)", "containers": "\(dropped.containers)"])
                cleaned += lost.map { "lost layer \($0)" } + dropped.images.map { "image \($0) on a lost layer" }
                    + dropped.containers.map { "container \($0) on a lost layer" }
            }
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

    /// Takes over the mounts recorded for containers; a record whose rootfs is no longer mounted
    /// (the host rebooted, or someone unmounted it) is reset to zero. Returns the kept mount points.
    private func restoreRecordedMounts(_ cleaned: inout [String]) throws -> [String] {
        let records = try metadata.recordedMounts()
        guard !records.isEmpty else { return [] }
        let active = Set(try Mounts.mountPoints())
        var kept: [String] = []
        for r in records {
            if let point = driver.mountPoint(r.layer) {
                guard active.contains(point) else {
                    try metadata.setMountCount(layer: r.layer, 0)
                    cleaned.append("mount record (count \(r.count)) of container \(r.container), whose rootfs \(point) was not mounted")
                    continue
                }
                mounts[r.layer] = (r.count, point)
                kept.append(point)
            } else {
                // Copy drivers mount nothing: the directory is the rootfs.
                mounts[r.layer] = (r.count, try driver.mount(r.layer, parentChain: []))
            }
            logger.info("kept the rootfs mount of container \(r.container) across the restart", metadata: ["references": "\(r.count)"])
        }
        return kept
    }
}
