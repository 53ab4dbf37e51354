public import CrispCore
import CCrispShim
import Glibc

/// Waits for a file to appear, through inotify on its directory (never by polling the path).
public enum FileAppearance {
    /// Returns true once `path` exists, false when `timeout` passes first. The blocking wait
    /// runs on a thread of its own.
    public static func wait(for path: String, timeout: Duration) async throws(CrispError) -> Bool {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let name = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        let fd = crisp_inotify_init()
        guard fd >= 0 else { throw CrispError(.internal, "inotify", cause: SystemCallError("inotify_init1", directory, errno: errno)) }
        guard crisp_inotify_add_watch(fd, directory.isEmpty ? "/" : directory, crisp_in_create() | crisp_in_moved_to()) >= 0 else {
            let e = errno
            close(fd)
            throw CrispError(.internal, "cannot watch \(directory)", cause: SystemCallError("inotify_add_watch", directory, errno: e))
        }
        // Checked after the watch is in place, so a file created in between is not missed.
        if access(path, F_OK) == 0 {
            close(fd)
            return true
        }
        let deadline = ContinuousClock.now + timeout
        return await Spawn.onThread {
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let left = ContinuousClock.now.duration(to: deadline)
                if left <= .zero { return access(path, F_OK) == 0 }
                let ms = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, ms)
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { return access(path, F_OK) == 0 }
                let n = read(fd, &buffer, buffer.count)
                if n > 0, ExitWatcher.eventNames(buffer, count: n).contains(name) { return true }
            }
        }
    }
}
