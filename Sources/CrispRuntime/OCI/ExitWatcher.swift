public import CrispCore
import CCrispShim
public import Foundation
import Glibc
import Synchronization

/// A container exit as conmon recorded it: the file `EXITDIR/ID` holds the exit code.
public struct ContainerExit: Sendable, Equatable {
    public var id: String
    public var exitCode: Int32
    /// When conmon wrote the file, i.e. when the container exited.
    public var at: Date
}

/// Learns container exits from conmon's exit directory through inotify — no polling. One
/// thread blocks in poll(2) on the inotify descriptor and a stop pipe.
public final class ExitWatcher: Sendable {
    public let directory: String
    public let exits: AsyncStream<ContainerExit>
    private let continuation: AsyncStream<ContainerExit>.Continuation
    private let inotify: Int32
    private let stopPipe: Pipe2
    private let stopped = Mutex(false)

    public init(directory: String) throws(CrispError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CrispError(.internal, "cannot create exit directory \(directory): \(error.localizedDescription)")
        }
        let fd = crisp_inotify_init()
        guard fd >= 0 else { throw CrispError(.internal, "inotify", cause: SystemCallError("inotify_init1", directory, errno: errno)) }
        guard crisp_inotify_add_watch(fd, directory, crisp_in_close_write() | crisp_in_moved_to()) >= 0 else {
            let e = errno
            close(fd)
            throw CrispError(.internal, "cannot watch \(directory)", cause: SystemCallError("inotify_add_watch", directory, errno: e))
        }
        inotify = fd
        stopPipe = try Pipe2()
        (exits, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        let thread = Thread { [self] in self.loop() }
        thread.name = "crisp-exit-watcher"
        thread.start()
    }

    /// Reads an exit file that already exists (recovery after a restart).
    public func recordedExit(id: String) -> ContainerExit? {
        Self.read(directory: directory, id: id)
    }

    static func read(directory: String, id: String) -> ContainerExit? {
        let path = directory + "/" + id
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let code = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        let at = ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? Date()
        return ContainerExit(id: id, exitCode: code, at: at)
    }

    public func stop() {
        let already = stopped.withLock { s in
            defer { s = true }
            return s
        }
        if !already { _ = Glibc.write(stopPipe.write, "x", 1) }
    }

    deinit {
        stop()
    }

    private func loop() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
        defer {
            close(inotify)
            stopPipe.closeBoth()
            continuation.finish()
        }
        while true {
            let rc = poll(&fds, 2, -1)
            if rc < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            let n = buffer.withUnsafeMutableBytes { Glibc.read(inotify, $0.baseAddress, $0.count) }
            if n <= 0 { continue }
            for name in Self.eventNames(buffer, count: n) {
                // conmon writes through a temporary name and renames it into place.
                if name.isEmpty || name.hasPrefix(".") || name.contains(".tmp") { continue }
                if let exit = Self.read(directory: directory, id: name) { continuation.yield(exit) }
            }
        }
    }
}

extension ExitWatcher {
    /// The file names of the inotify events in the first `count` bytes of `buffer`.
    static func eventNames(_ buffer: [UInt8], count: Int) -> [String] {
        var names: [String] = []
        var offset = 0
        // struct inotify_event { int wd; uint32_t mask, cookie, len; char name[]; }
        while offset + 16 <= count {
            let len = buffer.withUnsafeBytes { Int($0.load(fromByteOffset: offset + 12, as: UInt32.self)) }
            names.append(String(decoding: buffer[(offset + 16)..<min(offset + 16 + len, count)].prefix { $0 != 0 }, as: UTF8.self))
            offset += 16 + len
        }
        return names
    }
}
