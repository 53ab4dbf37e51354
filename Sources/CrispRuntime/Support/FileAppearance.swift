public import CrispCore
import CrispOS
import Glibc

/// Waits for a file to appear, through inotify on its directory (never by polling the path).
public enum FileAppearance {
    /// Returns true once `path` exists, false when `timeout` passes first (or the waiting task is
    /// cancelled). The blocking wait runs on a thread of its own.
    public static func wait(for path: String, timeout: Duration) async throws(CrispError) -> Bool {
        let (directory, name) = splitPath(path)
        let watcher = try InotifyWatcher()
        try watcher.add(directory.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : directory, mask: [.create, .movedTo])
        // Checked after the watch is in place, so a file created in between is not missed.
        if access(path, F_OK) == 0 { return true }
        let wanted = Array(name.utf8)
        let deadline = ContinuousClock.now + timeout
        return await withTaskCancellationHandler {
            await runOnThread(name: "crisp-file-wait", stackSize: 256 << 10) {
                while true {
                    switch watcher.next(timeout: ContinuousClock.now.duration(to: deadline)) {
                    case .events(let events):
                        if events.contains(where: { $0.name == wanted }) { return true }
                    case .timedOut, .stopped:
                        return access(path, F_OK) == 0
                    }
                }
            }
        } onCancel: {
            watcher.stop()
        }
    }
}
