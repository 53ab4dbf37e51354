public import CrispCore
import Glibc
import Synchronization

/// What an inotify watch reports (inotify(7)).
public struct InotifyMask: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let modify = InotifyMask(rawValue: UInt32(IN_MODIFY))
    public static let attrib = InotifyMask(rawValue: UInt32(IN_ATTRIB))
    public static let closeWrite = InotifyMask(rawValue: UInt32(IN_CLOSE_WRITE))
    public static let movedFrom = InotifyMask(rawValue: UInt32(IN_MOVED_FROM))
    public static let movedTo = InotifyMask(rawValue: UInt32(IN_MOVED_TO))
    public static let create = InotifyMask(rawValue: UInt32(IN_CREATE))
    public static let delete = InotifyMask(rawValue: UInt32(IN_DELETE))
    public static let deleteSelf = InotifyMask(rawValue: UInt32(IN_DELETE_SELF))
    public static let moveSelf = InotifyMask(rawValue: UInt32(IN_MOVE_SELF))
    /// Reported only: the watch is gone (removed, or its file deleted).
    public static let ignored = InotifyMask(rawValue: UInt32(IN_IGNORED))
    /// Adding only: watch the path only if it is a directory.
    public static let onlyDirectory = InotifyMask(rawValue: UInt32(IN_ONLYDIR))
}

/// One inotify event. `name` is the entry's name as the kernel gave it — raw bytes, which need not
/// be UTF-8 — and empty for an event on the watched item itself.
public struct InotifyEvent: Sendable, Hashable {
    public var watch: Int32
    public var mask: InotifyMask
    public var cookie: UInt32
    public var name: [UInt8]

    public init(watch: Int32, mask: InotifyMask, cookie: UInt32 = 0, name: [UInt8]) {
        self.watch = watch
        self.mask = mask
        self.cookie = cookie
        self.name = name
    }

    /// `name` for messages and for names known to be text; invalid bytes become U+FFFD.
    public var nameString: String { String(decoding: name, as: UTF8.self) }

    /// The events in bytes read from an inotify descriptor; a truncated last event is dropped.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> [InotifyEvent] {
        // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[len]; } (NUL padded)
        var events: [InotifyEvent] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            let len = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            guard offset + 16 + len <= bytes.count else { break }
            let name = bytes[(offset + 16)..<(offset + 16 + len)].prefix { $0 != 0 }
            events.append(InotifyEvent(watch: wd, mask: InotifyMask(rawValue: mask), cookie: cookie, name: Array(name)))
            offset += 16 + len
        }
        return events
    }
}

/// An inotify instance: add and remove watches, then wait for events — blocking, on a thread of
/// the caller's (`next`) or on a dedicated thread (`startLoop`). Never polls: the waiting thread
/// sleeps in poll(2) on the inotify descriptor and a stop socket. `stop()` wakes it; the
/// descriptors close when the watcher is released.
public final class InotifyWatcher: Sendable {
    private let fd: Int32
    private let stopRead: Int32
    private let stopWrite: Int32
    private let stopped = Mutex(false)

    public init() throws(CrispError) {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw CrispError(.internal, "cannot start inotify", cause: SystemCallError("inotify_init1", "", errno: errno)) }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            let e = errno
            close(fd)
            throw CrispError(.internal, "cannot start inotify", cause: SystemCallError("socketpair", "", errno: e))
        }
        self.fd = fd
        stopRead = pair[0]
        stopWrite = pair[1]
    }

    deinit {
        close(fd)
        close(stopRead)
        close(stopWrite)
    }

    /// Watches `path`;
    /// returns the watch descriptor that events carry. Adding a path again updates its mask.
    @discardableResult
    public func add(_ path: String, mask: InotifyMask) throws(CrispError) -> Int32 {
        let wd = inotify_add_watch(fd, path, mask.rawValue)
        guard wd >= 0 else {
            let e = errno
            throw CrispError(e == ENOENT ? .notFound : .internal, "cannot watch \(path)",
                             cause: SystemCallError("inotify_add_watch", path, errno: e))
        }
        return wd
    }

    /// Removes a watch (an `.ignored` event follows); an unknown watch is ignored.
    public func remove(_ watch: Int32) {
        _ = inotify_rm_watch(fd, watch)
    }

    /// Wakes a thread waiting in `next` (and every later call returns `.stopped`). Idempotent.
    public func stop() {
        let already = stopped.withLock { s in
            defer { s = true }
            return s
        }
        if !already {
            var b: UInt8 = 1
            _ = write(stopWrite, &b, 1)
        }
    }

    public enum Wait: Sendable, Equatable {
        case events([InotifyEvent])
        case timedOut
        case stopped
    }

    /// Blocking: waits until events arrive, `timeout` passes (nil: no limit), or `stop()`.
    /// Never call from async code; use `runOnThread` or `startLoop`.
    public func next(timeout: Duration? = nil) -> Wait {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            var ms: Int32 = -1
            if let deadline {
                let left = ContinuousClock.now.duration(to: deadline)
                if left <= .zero { return .timedOut }
                // Rounded up, so a wake-up never comes before the deadline.
                ms = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, ms)
            if r < 0 {
                if errno == EINTR { continue }
                return .stopped
            }
            if fds[1].revents != 0 { return .stopped }
            if r == 0 { continue }  // the deadline check above answers
            guard fds[0].revents & Int16(POLLIN) != 0 else { return .stopped }  // POLLERR/POLLNVAL
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .stopped
            }
            let events = buffer.withUnsafeBytes { InotifyEvent.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            if !events.isEmpty { return .events(events) }
        }
    }

    /// Calls `handle` with each batch of events on a dedicated thread named `name`, until
    /// `stop()`; then calls `finished` on that thread. The thread keeps the watcher alive.
    public func startLoop(name: String, _ handle: @escaping @Sendable ([InotifyEvent]) -> Void,
                          finished: @escaping @Sendable () -> Void = {}) {
        startThread(name: name, stackSize: 1 << 20) { [self] in
            while case .events(let batch) = next() { handle(batch) }
            finished()
        }
    }
}
