import CrispCore
import CrispOS
import Foundation
import Logging

/// Sync points for `sync = none`. Layers become visible without a syncfs (fast pulls); a power
/// cut before the kernel writes them back could leave a complete-looking layer with missing
/// files. Each such layer carries the boot id it was stored under until a sync point (every 30 s
/// while any is pending, and at a clean close) has put it on disk; a store opened under another
/// boot drops the ones still pending (`recover`). The interval is the kernel's own dirty-page
/// expiry, so a sync point mostly finds the data written back already and costs little.
extension Storage {
    static let syncPointInterval: Duration = .seconds(30)

    static func currentBootID() -> String {
        (readSmallFile("/proc/sys/kernel/random/boot_id") ?? "unknown").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func startSyncPoints() {
        guard options.sync == .none, syncPoints == nil else { return }
        syncPoints = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.syncPointInterval)
                guard !Task.isCancelled, let self else { return }
                await self.syncPoint()
            }
        }
    }

    /// syncfs of the storage filesystem, then the layers complete before it are marked on disk.
    func syncPoint() async {
        guard !closed, options.sync == .none else { return }
        do {
            let pending = try metadata.unsyncedLayers().map(\.id)
            guard !pending.isEmpty else { return }
            let root = options.root
            try await runOnThread { try syncFilesystem(of: root) }
            try metadata.markSynced(pending)
            logger.debug("sync point", metadata: ["layers": "\(pending.count)"])
        } catch {
            logger.warning("sync point failed; the layers stay pending", metadata: ["error": "\(error)"])
        }
    }
}
