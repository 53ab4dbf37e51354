public import CrispCore
import CCrispShim
import Glibc

/// The one way crisp starts programs: posix_spawn. Foundation's `Process` cannot hand extra
/// descriptors to the child (conmon takes its sync pipe as fd 3) nor reset signal dispositions:
/// swift-service-lifecycle ignores SIGTERM/SIGINT/SIGHUP in the daemon, and an ignored signal
/// stays ignored across execve — a container or CNI plugin started under it could not be stopped
/// with SIGTERM. `start` returns a `SpawnedChild` (waited for through a pidfd); `run` runs a
/// program to completion with stdin, captured output and a timeout.
public enum Spawn {
    public struct Options: Sendable {
        public var path: String
        /// argv[1...]; argv[0] is `path`.
        public var arguments: [String]
        /// `NAME=value` entries; the child gets exactly these.
        public var environment: [String]
        /// Child descriptor number → parent descriptor to dup2 onto it. Unlisted 0–2 get /dev/null.
        public var descriptors: [Int32: Int32] = [:]
        public var directory: String?
        public init(path: String, arguments: [String] = [], environment: [String] = Spawn.baseEnvironment) {
            self.path = path
            self.arguments = arguments
            self.environment = environment
        }
    }

    public static let baseEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Spawns the program in a new session with every signal at its default disposition and none
    /// blocked. Descriptors not listed are closed in the child, whatever their close-on-exec flag:
    /// a listening socket leaked into a long-lived conmon would keep the CRI socket "alive" after
    /// crispd died. The caller must wait for the returned child (or it stays a zombie).
    public static func start(_ o: Options) throws(CrispError) -> SpawnedChild {
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
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | crisp_spawn_setsid_flag())

        let argv = ([o.path] + o.arguments).map { strdup($0) } + [nil]
        let envp = o.environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: Int32 = 0
        var rc: Int32 = 0
        // Recorded before it can exit, so that the orphan reaper never takes its status.
        _ = ChildReaper.spawning {
            rc = posix_spawn(&pid, o.path, &actions, &attr, argv, envp)
            return rc == 0 ? pid : -1
        }
        guard rc == 0 else {
            throw CrispError(rc == ENOENT ? .failedPrecondition : .internal, "cannot start \(o.path)",
                             cause: SystemCallError("posix_spawn", o.path, errno: rc))
        }
        let pidfd = crisp_pidfd_open(pid)
        guard pidfd >= 0 else {
            let e = errno
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
            ChildReaper.forget(pid)
            throw CrispError(.internal, "cannot watch \(o.path)", cause: SystemCallError("pidfd_open", o.path, errno: e))
        }
        return SpawnedChild(pid: pid, pidfd: pidfd)
    }
}
