import CrispCore
import Foundation

/// An exclusive `flock` on `<root>/crispd.lock`, held for the daemon's life, so that two crispd
/// never share one root. The holder's pid is written into the file for the error message.
final class DaemonLock: Sendable {
    let path: String
    let fd: Int32

    init(path: String) throws(CrispError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CrispError(.internal, "cannot open lock file \(path)", cause: SystemCallError("open", path, errno: errno))
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var e = errno
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, buf.count, 0)
            let holder = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
            // A crispd killed while spawning a program leaves the lock with that program's copy of
            // its descriptors until the program has closed them (a moment, before it runs). When
            // the crispd that wrote the file is gone, wait for that (at most 10 s) instead of
            // failing a restart that a supervisor made at once.
            if e == EWOULDBLOCK, let pid = Int32(holder), kill(pid, 0) != 0 && errno == ESRCH {
                let deadline = ContinuousClock.now + .seconds(10)
                while e == EWOULDBLOCK && ContinuousClock.now < deadline {
                    usleep(20_000)
                    e = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno
                }
            }
            if e != 0 {
                close(fd)
                if e == EWOULDBLOCK {
                    let holders = Self.processes(holding: path)
                    throw CrispError(.failedPrecondition,
                                     "another crispd (pid \(holder)) already uses this root: \(path) is locked"
                                     + (holders.isEmpty ? "" : " (held by \(holders.joined(separator: ", ")))")
                                     + "; stop it or choose another --root")
                }
                throw CrispError(.internal, "cannot lock \(path)", cause: SystemCallError("flock", path, errno: e))
            }
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Processes with `path` open, as "PID (COMMAND)", for the error message.
    static func processes(holding path: String) -> [String] {
        var out: [String] = []
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(pid) != nil {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            if fds.contains(where: { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == path }) {
                let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                out.append("\(pid) (\(comm))")
            }
        }
        return out
    }
}
