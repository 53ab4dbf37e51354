public import CrispCore
public import Logging
import CrispOS
import Foundation
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
        var stopPipe: (read: Int32, write: Int32)? = nil
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
        if state.withLock({ $0.stopPipe != nil }) { return }
        let dir = loader.directory
        if mkdirAll(dir) != 0 {
            throw CrispError(.failedPrecondition, "cannot create CNI config directory \(dir)",
                             cause: SystemCallError("mkdir", dir, errno: errno))
        }
        let ifd = inotify_init1(Int32(IN_CLOEXEC))
        guard ifd >= 0 else {
            throw CrispError(.internal, "cannot watch \(dir)", cause: SystemCallError("inotify_init1", dir, errno: errno))
        }
        if inotify_add_watch(ifd, dir, Self.dirMask) < 0 {
            let e = errno
            close(ifd)
            throw CrispError(.internal, "cannot watch \(dir)", cause: SystemCallError("inotify_add_watch", dir, errno: e))
        }
        var p: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &p) == 0 else {
            let e = errno
            close(ifd)
            throw CrispError(.internal, "cannot watch \(dir)", cause: SystemCallError("socketpair", dir, errno: e))
        }
        let stopRead = p[0]
        state.withLock { $0.stopPipe = (p[0], p[1]) }
        // Reload once more: a file may have arrived between init and the watch.
        reload()
        let thread = Thread { [weak self] in
            Self.watchLoop(inotifyFD: ifd, stopFD: stopRead, dir: dir) { self?.reload() }
            close(ifd)
            close(stopRead)
        }
        thread.name = "crisp-cni-watch"
        thread.start()
    }

    /// Stops watching and finishes every status stream. Idempotent.
    public func stop() {
        let (pipe, subs) = state.withLock { s in
            let r = (s.stopPipe, s.subscribers)
            s.stopPipe = nil
            s.subscribers = [:]
            return r
        }
        if let pipe {
            var b: UInt8 = 1
            _ = write(pipe.write, &b, 1)
            close(pipe.write)
        }
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

    static let dirMask = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_MODIFY
        | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

    /// Blocks in poll(2) on the inotify and stop descriptors and reloads once per batch of events.
    /// When the directory itself is removed or renamed, it watches the parent until a directory of
    /// that name appears again and then watches it anew. Returns when the stop socket is readable.
    private static func watchLoop(inotifyFD: Int32, stopFD: Int32, dir: String, reload: () -> Void) {
        var buf = [UInt8](repeating: 0, count: 16384)
        let (parent, base) = splitPath(dir)
        var parentWatch: Int32 = -1
        while true {
            var fds = [pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, -1)
            if r < 0 { if errno == EINTR { continue }; return }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { if fds[0].revents != 0 { return }; continue }
            let n = buf.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            var dirGone = false, dirBack = false
            var off = 0
            let header = MemoryLayout<inotify_event>.size
            while off + header <= n {
                let ev = buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: off, as: inotify_event.self) }
                let nameBytes = buf[(off + header)..<min(n, off + header + Int(ev.len))]
                let name = String(decoding: nameBytes.prefix(while: { $0 != 0 }), as: UTF8.self)
                if ev.wd == parentWatch {
                    if name == base { dirBack = true }
                } else if ev.mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED) != 0 {
                    dirGone = true
                }
                off += header + Int(ev.len)
            }
            if dirGone && parentWatch < 0 {
                parentWatch = inotify_add_watch(inotifyFD, parent, UInt32(IN_CREATE | IN_MOVED_TO | IN_ONLYDIR))
                // The directory may have come back before the parent watch existed.
                if access(dir, F_OK) == 0 { dirBack = true }
            }
            if dirBack && parentWatch >= 0, inotify_add_watch(inotifyFD, dir, dirMask) >= 0 {
                inotify_rm_watch(inotifyFD, parentWatch)
                parentWatch = -1
            }
            reload()
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
