public import CrispCore
public import Logging
import CrispOS
import Glibc
import Synchronization

/// Whether pods can be networked, as the CRI `NetworkReady` condition reports it.
public struct NetworkReadiness: Sendable, Equatable {
    public static let notReadyReason = "NetworkPluginNotReady"

    public var ready: Bool
    public var reason: String
    public var message: String

    public init(ready: Bool, reason: String = "", message: String = "") {
        self.ready = ready
        self.reason = reason
        self.message = message
    }

    static func from(_ set: CNIConfigSet) -> NetworkReadiness {
        if set.defaultNetwork != nil { return NetworkReadiness(ready: true) }
        let why: String
        if let missing = set.defaultNetworkMissing {
            why = "default network \"\(missing)\" (cni_default_network) is not defined by any valid CNI configuration in \(set.directory)"
        } else if !set.skipped.isEmpty {
            why = "no valid CNI configuration in \(set.directory) (skipped: "
                + set.skipped.map { "\($0.file): \($0.reason)" }.joined(separator: "; ") + ")"
        } else {
            why = "no CNI configuration file in \(set.directory)"
        }
        return NetworkReadiness(ready: false, reason: notReadyReason, message: "Network plugin returns error: \(why)")
    }
}

/// Keeps the CNI configuration of a directory loaded and current: an inotify watch on the
/// directory reloads it on every change (no polling), on a dedicated thread. All methods are safe
/// to call concurrently.
public final class CNIConfigWatcher: Sendable {
    public let loader: CNIConfigLoader
    private let logger: Logger
    private let state: Mutex<State>

    private struct State {
        var configs: CNIConfigSet
        var subscribers: [UInt64: AsyncStream<NetworkReadiness>.Continuation] = [:]
        var nextID: UInt64 = 0
        var watcher: InotifyWatcher? = nil
    }

    /// Loads the directory once (creating it when missing, as ocicni does); `start()` begins
    /// watching.
    public init(loader: CNIConfigLoader, logger: Logger) {
        self.loader = loader
        self.logger = logger
        self.state = Mutex(State(configs: loader.load(logger: logger)))
    }

    deinit { stop() }

    /// The configs as of the last change seen.
    public var configs: CNIConfigSet { state.withLock { $0.configs } }
    public var readiness: NetworkReadiness { NetworkReadiness.from(configs) }
    public var defaultNetwork: CNINetworkConfigList? { configs.defaultNetwork }

    /// Starts the watch thread. Creates the directory when it does not exist. Calling it twice is
    /// a no-op.
    public func start() throws(CrispError) {
        if state.withLock({ $0.watcher != nil }) { return }
        let dir = loader.directory
        if mkdirAll(dir) != 0 {
            throw CrispError(.failedPrecondition, "cannot create CNI config directory \(dir)",
                             cause: SystemCallError("mkdir", dir, errno: errno))
        }
        let watcher = try InotifyWatcher()
        let dirWatch = try watcher.add(dir, mask: Self.dirMask)
        state.withLock { $0.watcher = watcher }
        // Reload once more: a file may have arrived between init and the watch.
        reload()
        let follow = DirectoryFollow(watcher: watcher, dir: dir, dirWatch: dirWatch)
        watcher.startLoop(name: "crisp-cni-watch") { [weak self] events in
            follow.handle(events)
            self?.reload()
        }
    }

    /// Stops watching and finishes every status stream. Idempotent.
    public func stop() {
        let (watcher, subs) = state.withLock { s in
            let r = (s.watcher, s.subscribers)
            s.watcher = nil
            s.subscribers = [:]
            return r
        }
        watcher?.stop()
        for c in subs.values { c.finish() }
    }

    /// Re-reads the directory now and notifies subscribers when readiness changed.
    public func reload() {
        let new = loader.load(logger: logger)
        let (old, subs) = state.withLock { s in
            let old = s.configs
            s.configs = new
            return (old, Array(s.subscribers.values))
        }
        let before = NetworkReadiness.from(old), after = NetworkReadiness.from(new)
        if before != after {
            logger.info("CNI network readiness changed", metadata: [
                "ready": "\(after.ready)", "message": "\(after.message)",
                "default": "\(new.defaultNetwork?.name ?? "")"])
            for c in subs { c.yield(after) }
        }
    }

    /// The current readiness, then every change, until `stop()`.
    public func readinessUpdates() -> AsyncStream<NetworkReadiness> {
        let (stream, cont) = AsyncStream<NetworkReadiness>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let id = state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.subscribers[id] = cont
            return id
        }
        cont.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        cont.yield(readiness)
        return stream
    }

    static let dirMask: InotifyMask = [.create, .delete, .movedTo, .movedFrom, .closeWrite, .modify,
                                       .attrib, .deleteSelf, .moveSelf]
}

/// Keeps the watch on the CNI directory across its removal: when the directory itself is
/// removed or renamed, it watches the parent until a directory of that name appears again and
/// then watches it anew. Used only by the watch thread, one batch at a time.
private final class DirectoryFollow: @unchecked Sendable {
    let watcher: InotifyWatcher
    let dir: String
    let parent: String
    let base: [UInt8]
    var dirWatch: Int32
    var parentWatch: Int32 = -1

    init(watcher: InotifyWatcher, dir: String, dirWatch: Int32) {
        self.watcher = watcher
        self.dir = dir
        self.dirWatch = dirWatch
        let (parent, base) = splitPath(dir)
        self.parent = parent.isEmpty ? "/" : parent
        self.base = Array(base.utf8)
    }

    func handle(_ events: [InotifyEvent]) {
        var dirGone = false, dirBack = false
        for event in events {
            if event.watch == parentWatch {
                if event.name == base { dirBack = true }
            } else if event.watch == dirWatch, !event.mask.isDisjoint(with: [.deleteSelf, .moveSelf, .ignored]) {
                // (The `.ignored` of a removed parent watch carries that watch, not this one.)
                dirGone = true
                // A renamed directory keeps its watch; its events are no longer about `dir`.
                if event.mask.contains(.moveSelf) { watcher.remove(event.watch) }
            }
        }
        if dirGone { dirWatch = -1 }
        if dirGone && parentWatch < 0 {
            parentWatch = (try? watcher.add(parent, mask: [.create, .movedTo, .onlyDirectory])) ?? -1
            // The directory may have come back before the parent watch existed.
            if access(dir, F_OK) == 0 { dirBack = true }
        }
        if dirBack && parentWatch >= 0, let wd = try? watcher.add(dir, mask: CNIConfigWatcher.dirMask) {
            dirWatch = wd
            watcher.remove(parentWatch)
            parentWatch = -1
        }
    }
}

/// mkdir -p with mode 0755; 0 on success, -1 with errno set.
func mkdirAll(_ path: String) -> Int32 {
    var cur = ""
    for part in path.split(separator: "/") {
        cur += "/" + part
        if mkdir(cur, 0o755) != 0 && errno != EEXIST { return -1 }
    }
    return 0
}
