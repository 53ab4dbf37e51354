import CrispCore
public import Logging
import CrispOS
import Foundation
import Glibc

/// Where and how storage keeps its data.
public struct StorageOptions: Sendable {
    /// Persistent data: metadata database, layers (e.g. `<crisp root>/storage`).
    public var root: String
    /// Volatile state (e.g. `/run/crisp/storage`).
    public var runRoot: String
    /// "overlay" (default), "vfs" or "btrfs".
    public var driver: String
    public var driverOptions: [String]
    public var sync: SyncMode
    /// This boot's id (`/proc/sys/kernel/random/boot_id` when nil). Layers stored with
    /// `sync = none` carry it until a sync point puts them on disk; a store opened under another
    /// boot drops those it still carries. A test sets it to open a copy of a disk "after a reboot".
    public var bootID: String?

    /// Whether a layer's content is flushed to disk before the layer becomes visible.
    public enum SyncMode: String, Sendable, CaseIterable {
        /// The page cache is trusted (containers/storage's default): safe against a crashed
        /// process, not against a power loss.
        case none
        /// syncfs(2) of the layer's filesystem before the commit.
        case filesystem
    }

    public init(root: String, runRoot: String, driver: String = "overlay", driverOptions: [String] = [], sync: SyncMode = .none) {
        self.root = root
        self.runRoot = runRoot
        self.driver = driver
        self.driverOptions = driverOptions
        self.sync = sync
    }
}

/// Layer, image and container stores over one storage driver.
///
/// All methods are safe to call concurrently. The actor guards the bookkeeping (mount counts,
/// layers being applied); long work (tar extraction, tree copies) runs on threads of its own, so
/// other calls proceed meanwhile. Metadata lives in SQLite (see `MetadataStore`); an exclusive
/// lock on `<root>/storage.lock` keeps a second process out of the same root.
public actor Storage {
    public let options: StorageOptions
    let logger: Logger
    nonisolated let driver: any StorageDriver
    nonisolated let metadata: MetadataStore
    let lock: FileLock
    /// Mount reference counts and paths by container layer, mirrored in the metadata
    /// (`container.mountCount`); restored at start-up from it.
    var mounts: [LayerID: (count: Int, path: String)] = [:]
    /// Applies in flight, keyed by layer id: a second request for the same layer waits for the
    /// first instead of writing the same directory.
    var applying: [LayerID: Task<Layer, any Error>] = [:]
    /// Container layers being exported (`exportContainerChanges`), which removal must wait for.
    var exporting: [LayerID: Int] = [:]
    var containerUsageCache: [LayerID: (at: ContinuousClock.Instant, bytes: UInt64, inodes: UInt64)] = [:]
    var closed = false
    /// The boot this store runs under (see `StorageOptions.bootID`).
    nonisolated let bootID: String
    /// The periodic sync point of `sync = none` (see `Storage+SyncPoints.swift`).
    var syncPoints: Task<Void, Never>?
    /// What the start-up clean-up removed (for logs and tests).
    public internal(set) var lastRecovery: [String] = []

    private init(options: StorageOptions, logger: Logger, driver: any StorageDriver, metadata: MetadataStore, lock: FileLock) {
        self.options = options
        self.logger = logger
        self.driver = driver
        self.metadata = metadata
        self.lock = lock
        bootID = options.bootID ?? Self.currentBootID()
    }

    /// Opens (creating if needed) the storage at `options.root`: takes the root's lock (fails with
    /// `failedPrecondition` if another process holds it), checks that the driver works on the
    /// backing filesystem, and removes what a crash left half-done (logged).
    public static func open(_ options: StorageOptions, logger: Logger) async throws -> Storage {
        let driver = try makeStorageDriver(name: options.driver, root: options.root, options: options.driverOptions,
                                           durable: options.sync == .filesystem)
        do {
            try makeDirectories(options.root)
            try makeDirectories(options.runRoot)
        } catch {
            throw CrispError(.failedPrecondition, "cannot create storage directories \(options.root), \(options.runRoot)", cause: error)
        }
        let lock = try FileLock(exclusive: options.root + "/storage.lock")
        do {
            try driver.check()
        } catch let e as CrispError {
            throw e
        } catch {
            throw CrispError(.failedPrecondition, "storage driver \(driver.name) does not work in \(options.root)", cause: error)
        }
        let metadata: MetadataStore
        do {
            metadata = try MetadataStore(path: options.root + "/metadata.sqlite", durable: options.sync == .filesystem)
        } catch {
            throw CrispError(.internal, "cannot open storage metadata \(options.root)/metadata.sqlite", cause: error)
        }
        let storage = Storage(options: options, logger: logger, driver: driver, metadata: metadata, lock: lock)
        try await storage.recover()
        await storage.startSyncPoints()
        logger.info("storage opened", metadata: ["root": "\(options.root)", "driver": "\(driver.name)"])
        return storage
    }

    /// Releases the root's lock; further calls fail with `unavailable`. By default every
    /// container rootfs is unmounted (and its count reset). With `keepingMounts`, mounts and their
    /// recorded counts stay, for a daemon that exits while its containers keep running: the next
    /// `open` takes them over.
    public func close(keepingMounts: Bool = false) async {
        guard !closed else { return }
        syncPoints?.cancel()
        await syncPoint()
        closed = true
        for task in applying.values { task.cancel() }
        if !keepingMounts {
            for (layer, _) in mounts {
                do {
                    try driver.unmount(layer)
                    try metadata.setMountCount(layer: layer, 0)
                } catch {
                    logger.warning("unmount at close failed", metadata: ["layer": "\(layer)", "error": "\(error)"])
                }
            }
        }
        mounts.removeAll()
        lock.unlock()
    }

    /// What a kill -9 leaves: the lock is released (the kernel would do it), nothing else is touched.
    func simulateCrash() {
        syncPoints?.cancel()
        closed = true
        for task in applying.values { task.cancel() }
        mounts.removeAll()
        lock.unlock()
    }

    public var driverName: String { driver.name }

    func checkOpen() throws {
        if closed { throw CrispError(.unavailable, "storage at \(options.root) is closed") }
    }
}

/// Wraps a system-level failure into a CrispError naming what was being done; CrispErrors pass.
func storageError(_ error: any Error, _ doing: String) -> CrispError {
    if let e = error as? CrispError { return e }
    if let s = error as? SystemCallError {
        let code: CrispError.Code = s.errno == ENOSPC ? .resourceExhausted : s.errno == ENOENT ? .notFound : .internal
        return CrispError(code, "\(doing) failed", cause: s)
    }
    return CrispError(.internal, "\(doing) failed", cause: error)
}
