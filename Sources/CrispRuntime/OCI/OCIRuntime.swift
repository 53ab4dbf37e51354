public import CrispCore
public import CrispOCI

/// The seam between the services and the OCI runtime. It speaks in crisp's terms (what to
/// launch, what state a container is in, how a stop ended); `ConmonRuntime` maps them onto
/// conmon and runc, and tests use a fake.
public protocol OCIRuntime: Sendable {
    /// Creates the container from `spec` (the bundle is written here) and returns once the
    /// runtime has made it: `created`, or running when restored from a checkpoint.
    func create(spec: RuntimeSpec, launch: ContainerLaunch) async throws(CrispError) -> LaunchedContainer
    func start(id: String, handler: RuntimeHandler) async throws(CrispError)
    /// Sends `signal`, waits up to `timeout` for the exit, then SIGKILL; zero kills at once.
    func stop(id: String, handler: RuntimeHandler, signal: Signal, timeout: Duration) async throws(CrispError) -> StopOutcome
    func execSync(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process, timeout: Duration?) async throws(CrispError) -> ExecResult
    /// Ends the runtime's record of the container; one it does not know is not an error.
    func delete(id: String, handler: RuntimeHandler) async throws(CrispError)
    /// Starts a command for a streaming exec session (pipes, or a terminal when `tty`).
    func startExec(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process,
                   tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> StreamedExec
    /// NotFound when the runtime does not know the container.
    func state(id: String, handler: RuntimeHandler) async throws(CrispError) -> RuntimeContainerState
    /// Applies new cgroup limits (the spec's `linux.resources`).
    func update(id: String, handler: RuntimeHandler, resources: RuntimeSpec.Resources) async throws(CrispError)
    func pause(id: String, handler: RuntimeHandler) async throws(CrispError)
    func resume(id: String, handler: RuntimeHandler) async throws(CrispError)
    /// Dumps the running container's processes with CRIU into `imagePath`; the container keeps
    /// running when `leaveRunning`.
    func checkpoint(id: String, handler: RuntimeHandler, imagePath: String, workPath: String,
                    leaveRunning: Bool, timeout: Duration) async throws(CrispError)
}

/// What the runtime is asked to launch, besides the spec.
public struct ContainerLaunch: Sendable, Equatable {
    public var id: String
    /// The runtime's name for it (conmon logs and names it so), e.g. `k8s_NAME_POD_NS_UID_ATTEMPT`.
    public var name: String
    public var handler: RuntimeHandler
    /// The directory the spec is written to, which also holds the runtime's files for it.
    public var bundle: String
    /// The CRI log file of the container's stdout and stderr.
    public var logPath: String
    /// The log file is cut past this many bytes; zero or less means no limit.
    public var logSizeMax: Int = -1
    public var stdin = false
    public var stdinOnce = false
    public var terminal = false
    /// A CRIU image directory: the container's processes are restored from it instead of made.
    public var restorePath: String?

    public init(id: String, name: String, handler: RuntimeHandler, bundle: String, logPath: String) {
        self.id = id
        self.name = name
        self.handler = handler
        self.bundle = bundle
        self.logPath = logPath
    }
}

public struct LaunchedContainer: Sendable, Equatable {
    /// The container's init process.
    public var pid: Int32
    /// The process that watches over it and records its exit (conmon); 0 when unknown.
    public var monitorPID: Int32

    public init(pid: Int32, monitorPID: Int32) {
        self.pid = pid
        self.monitorPID = monitorPID
    }
}

/// The runtime's view of a container.
public struct RuntimeContainerState: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case creating, created, running, stopped, paused, unknown
    }

    public var status: Status
    /// Its init process; 0 once stopped.
    public var pid: Int32

    public init(status: Status, pid: Int32) {
        self.status = status
        self.pid = pid
    }
}

/// How a stop ended.
public enum StopOutcome: Sendable, Equatable {
    /// The container exited (now, or before the stop was asked).
    case exited(ContainerExit)
    /// The runtime does not know the container (a reboot emptied its state, or it was deleted):
    /// no exit will ever be recorded.
    case unknownToRuntime
    /// The container was killed but its exit was not recorded in time.
    case noExitRecorded

    public var exit: ContainerExit? {
        if case .exited(let e) = self { return e }
        return nil
    }
}
