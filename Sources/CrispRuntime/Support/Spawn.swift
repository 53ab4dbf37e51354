public import CrispCore
import CCrispShim
import Foundation
import Glibc

/// Starts programs with posix_spawn. Foundation's `Process` cannot hand extra descriptors to the
/// child (conmon takes its sync pipe as fd 3) nor reset signal dispositions: swift-service-
/// lifecycle ignores SIGTERM/SIGINT/SIGHUP in the daemon, and an ignored signal stays ignored
/// across execve — a container started under it could not be stopped with SIGTERM.
public enum Spawn {
    public struct Options: Sendable {
        public var path: String
        public var arguments: [String]
        public var environment: [String]
        /// Child descriptor number → parent descriptor to dup2 onto it.
        public var descriptors: [Int32: Int32] = [:]
        public var directory: String?
        public init(path: String, arguments: [String], environment: [String] = Spawn.baseEnvironment) {
            self.path = path
            self.arguments = arguments
            self.environment = environment
        }
    }

    public static let baseEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Spawns and returns the pid. Descriptors not listed are closed in the child, whatever their
    /// close-on-exec flag: a listening socket leaked into a long-lived conmon would keep the CRI
    /// socket "alive" after crispd died.
    public static func start(_ o: Options) throws(CrispError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        var map = o.descriptors
        for fd in Int32(0)...2 where map[fd] == nil { map[fd] = devnull }
        // posix_spawn's dup2 of a descriptor onto itself clears close-on-exec (glibc ≥ 2.29).
        for (child, parent) in map.sorted(by: { $0.key < $1.key }) {
            posix_spawn_file_actions_adddup2(&actions, parent, child)
        }
        crisp_spawn_addclosefrom(&actions, (map.keys.max() ?? 2) + 1)
        if let dir = o.directory { crisp_spawn_addchdir(&actions, dir) }

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | crisp_spawn_setsid_flag())

        let argv = ([o.path] + o.arguments.dropFirst(0)).map { strdup($0) } + [nil]
        let envp = o.environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: Int32 = 0
        let rc = posix_spawn(&pid, o.path, &actions, &attr, argv, envp)
        guard rc == 0 else {
            throw CrispError(rc == ENOENT ? .failedPrecondition : .internal, "cannot start \(o.path)",
                             cause: SystemCallError("posix_spawn", o.path, errno: rc))
        }
        return pid
    }

    /// Runs blocking work on a thread of its own and returns its result.
    public static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (cont: CheckedContinuation<T, Never>) in
            Thread { cont.resume(returning: work()) }.start()
        }
    }

    /// Waits for a child to exit without blocking the cooperative pool: the blocking waitpid
    /// runs on a thread of its own. Returns the exit status, or 128+signal.
    public static func wait(_ pid: Int32) async -> Int32 {
        await onThread { waitBlocking(pid) }
    }

    /// Blocks the calling thread until the child exits; exit status or 128+signal.
    public static func waitBlocking(_ pid: Int32) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Runs a program to completion, collecting stdout and stderr (each capped), with an
    /// optional timeout after which the child is killed.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        public var timedOut: Bool
        public var stdoutTruncated: Bool
        public var stderrTruncated: Bool
        public var stderrText: String { String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// `onTimeout` runs when the time is up, before the child is killed: the child may have
    /// started processes of its own (runc exec's container process) that must be killed too.
    public static func run(_ o: Options, timeout: Duration? = nil, cap: Int = 16 << 20,
                           onTimeout: (@Sendable () -> Void)? = nil) async throws(CrispError) -> Output {
        let out = try Pipe2(), err = try Pipe2()
        var options = o
        options.descriptors[1] = out.write
        options.descriptors[2] = err.write
        let pid: Int32
        do {
            pid = try start(options)
        } catch {
            out.closeBoth()
            err.closeBoth()
            throw error
        }
        out.closeWrite()
        err.closeWrite()
        // Blocking reads get threads of their own: on the cooperative pool they would starve the
        // timer below (the pool has as many threads as cores).
        async let readOut = onThread { out.readAll(cap: cap) }
        async let readErr = onThread { err.readAll(cap: cap) }
        let timer: Task<Bool, Never>? = timeout.map { t in
            Task {
                do { try await Task.sleep(for: t) } catch { return false }
                if let onTimeout {
                    // The child's own children go first, while the child can still reap them:
                    // killed after it, they would be orphaned to a reaper that may never wait
                    // (a container's PID 1) and stay as zombies. The child gets a moment to exit.
                    onTimeout()
                    do { try await Task.sleep(for: .seconds(2)) } catch { return true }
                }
                kill(pid, SIGKILL)
                return true
            }
        }
        let status = await wait(pid)
        timer?.cancel()
        let timedOut = await timer?.value ?? false
        let (so, soT) = await readOut
        let (se, seT) = await readErr
        return Output(status: status, stdout: so, stderr: se, timedOut: timedOut, stdoutTruncated: soT, stderrTruncated: seT)
    }
}

/// A close-on-exec pipe whose ends are plain descriptors.
public final class Pipe2: Sendable {
    public let read: Int32
    public let write: Int32

    public init() throws(CrispError) {
        var fds: [Int32] = [0, 0]
        guard crisp_pipe_cloexec(&fds) == 0 else {
            throw CrispError(.internal, "cannot create a pipe", cause: SystemCallError("pipe2", "", errno: errno))
        }
        read = fds[0]
        write = fds[1]
    }

    public func closeWrite() { close(write) }
    public func closeRead() { close(read) }
    public func closeBoth() { close(read); close(write) }

    /// Reads one newline-terminated line (or up to EOF). conmon keeps its end of the sync pipe
    /// open for its whole life, so reading to EOF would wait for the container to exit.
    public func readLine(cap: Int = 1 << 20) -> [UInt8] {
        var out: [UInt8] = []
        var byte: UInt8 = 0
        while out.count < cap {
            let n = Glibc.read(read, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            out.append(byte)
        }
        return out
    }

    /// Reads to EOF, keeping at most `cap` bytes (the rest is drained so the writer never blocks).
    public func readAll(cap: Int) -> (bytes: [UInt8], truncated: Bool) {
        var out: [UInt8] = []
        var truncated = false
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(read, &buf, buf.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let room = cap - out.count
            if room > 0 { out += buf[0..<min(n, room)] }
            if n > room { truncated = true }
        }
        close(read)
        return (out, truncated)
    }
}
