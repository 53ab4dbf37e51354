public import CrispCore
public import CrispOCI
public import Foundation
import CrispOS

/// Drives runc/crun through conmon. conmon records exits in `exitDirectory` and serves attach
/// sockets under `socketDirectory`; the runtime's own short-lived files (exec process specs,
/// update requests) live in `scratchDirectory`, which crispd empties at start.
public struct ConmonRuntime: OCIRuntime {
    public let conmon: Conmon
    public let exits: ExitTracker
    public let exitDirectory: String
    public let socketDirectory: String
    public let scratchDirectory: String

    public init(conmon: Conmon, exits: ExitTracker, exitDirectory: String, socketDirectory: String, scratchDirectory: String) {
        self.conmon = conmon
        self.exits = exits
        self.exitDirectory = exitDirectory
        self.socketDirectory = socketDirectory
        self.scratchDirectory = scratchDirectory
    }

    /// Removes what a crispd killed mid-exec left in the scratch directory, and makes it.
    public func clearScratch() throws(CrispError) {
        try? FileManager.default.removeItem(atPath: scratchDirectory)
        do { try FileManager.default.createDirectory(atPath: scratchDirectory, withIntermediateDirectories: true) } catch {
            throw CrispError(.internal, "cannot create the runtime's scratch directory \(scratchDirectory): \(error.localizedDescription)")
        }
    }

    /// A fresh directory for one operation's files; the caller removes it.
    func scratch(_ purpose: String) throws(CrispError) -> String {
        let dir = scratchDirectory + "/\(purpose)-\(UUID().uuidString)"
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw CrispError(.internal, "cannot create \(dir): \(error.localizedDescription)")
        }
        return dir
    }

    func options(_ l: ContainerLaunch) -> Conmon.CreateOptions {
        var o = Conmon.CreateOptions(id: l.id, name: l.name, handler: l.handler, bundle: l.bundle, exitDirectory: exitDirectory,
                                     logPath: l.logPath, socketDirectory: socketDirectory)
        o.logSizeMax = l.logSizeMax
        o.stdin = l.stdin
        o.stdinOnce = l.stdinOnce
        o.terminal = l.terminal
        o.restorePath = l.restorePath
        return o
    }

    public func create(spec: RuntimeSpec, launch: ContainerLaunch) async throws(CrispError) -> LaunchedContainer {
        try Bundle.write(spec: spec, to: launch.bundle)
        do {
            let created = try await conmon.create(options(launch))
            return LaunchedContainer(pid: created.pid, monitorPID: created.conmonPID)
        } catch {
            // conmon failed before or during `runtime create`: remove what the runtime may have left.
            try? await delete(id: launch.id, handler: launch.handler)
            throw error
        }
    }

    public func start(id: String, handler: RuntimeHandler) async throws(CrispError) {
        if try await RuncExecFifo.start(root: handler.root, id: id) == .started { return }
        try await RuncCLI(handler: handler).start(id: id)
    }

    public func stop(id: String, handler: RuntimeHandler, signal: Signal, timeout: Duration) async throws(CrispError) -> StopOutcome {
        if let done = await exits.exit(of: id) { return .exited(done) }
        let cli = RuncCLI(handler: handler)
        // Signals go to the init process straight through a pidfd when runc's state file names
        // it (a runc exec, ~8 ms of CPU, saved on every stop); anything else asks runc.
        let state = RuncStateFile.read(root: handler.root, id: id)
        if timeout > .zero {
            if state?.signalInit(signal.rawValue, wholeContainer: false) == nil {
                do { try await cli.kill(id: id, signal: signal.rawValue) } catch where error.code == .notFound {
                    return await gone(id)
                }
            }
            if let e = await exits.wait(for: id, timeout: timeout) { return .exited(e) }
        }
        // SIGKILL to the init of a container with its own PID namespace ends all of it; in a
        // shared one, runc finds every process of the container in its cgroup.
        if state?.signalInit(Signal.kill.rawValue, wholeContainer: true) != nil {
            if let e = await exits.wait(for: id, timeout: .seconds(10)) { return .exited(e) }
            return .noExitRecorded
        }
        do { try await cli.kill(id: id, signal: Signal.kill.rawValue, all: true) } catch where error.code == .notFound {
            // No exit file is coming, so waiting for one would only cost 10 s per container.
            return await gone(id)
        } catch {
            // A container that already stopped refuses signals; its exit file is on its way.
            if !(error.message.contains("not running") || error.message.contains("stopped")) { throw error }
        }
        if let e = await exits.wait(for: id, timeout: .seconds(10)) { return .exited(e) }
        return .noExitRecorded
    }

    /// The runtime said it has no such container: its exit, if conmon recorded one meanwhile.
    func gone(_ id: String) async -> StopOutcome {
        if let e = await exits.exit(of: id) { return .exited(e) }
        return .unknownToRuntime
    }

    public func execSync(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process, timeout: Duration?) async throws(CrispError) -> ExecResult {
        let dir = try scratch("exec")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let processFile = dir + "/process.json", pidFile = dir + "/pid"
        // Read by runc at once and removed after: it need not reach the disk.
        try Bundle.writeJSON(process, to: processFile, durable: false)
        let out = try await RuncCLI(handler: handler).exec(id: id, processFile: processFile, pidFile: pidFile,
                                                          timeout: timeout, cap: ExecResult.outputCap)
        if out.timedOut {
            throw CrispError(.deadlineExceeded, "command \(process.args) in container \(id) timed out after \(timeout ?? .zero); it was killed")
        }
        if out.status != 0 && out.stdout.isEmpty && out.stderr.isEmpty == false && out.stderrText.hasPrefix("runc") {
            throw CrispError(.internal, "exec in container \(id) failed: \(out.stderrText)")
        }
        return ExecResult(exitCode: out.status, stdout: out.stdout, stderr: out.stderr,
                          truncated: out.stdoutTruncated || out.stderrTruncated)
    }

    /// Deletes the container: crisp itself when runc's state shows nothing left to run or kill
    /// (`RuncStoppedDelete`); otherwise the runtime, and then whatever of its cgroups the runtime
    /// left (see `CgroupLeftovers`); runc's record of them goes with its state, so it is read first.
    public func delete(id: String, handler: RuntimeHandler) async throws(CrispError) {
        let state = RuncStateFile.read(root: handler.root, id: id)
        if let state, await RuncStoppedDelete.delete(state, root: handler.root, id: id) == .deleted { return }
        let cgroups = state?.cgroupPaths
        let cli = RuncCLI(handler: handler)
        var failure: CrispError?
        // runc fails the delete of a stopped container whose cgroups it could not remove (and
        // drops its state all the same); crisp removes them, then asks runc again.
        do { try await cli.delete(id: id) } catch { failure = error }
        guard let cgroups else {
            if let failure { throw failure }
            return
        }
        let stays = await CgroupLeftovers.remove(cgroups.values)
        guard stays.isEmpty else {
            let list = stays.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            throw CrispError(.internal, "\(handler.name) deleted container \(id), but its cgroups could not be removed: \(list)")
        }
        if failure != nil { try await cli.delete(id: id) }
    }

    public func state(id: String, handler: RuntimeHandler) async throws(CrispError) -> RuntimeContainerState {
        let s = try await RuncCLI(handler: handler).state(id: id)
        return RuntimeContainerState(status: RuntimeContainerState.Status(rawValue: s.status) ?? .unknown, pid: s.pid)
    }

    public func update(id: String, handler: RuntimeHandler, resources: RuntimeSpec.Resources) async throws(CrispError) {
        let dir = try scratch("update")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Read by the runtime at once: it need not reach the disk.
        try Bundle.writeJSON(resources, to: dir + "/resources.json", durable: false)
        try await RuncCLI(handler: handler).update(id: id, resourcesFile: dir + "/resources.json")
    }

    public func pause(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await RuncCLI(handler: handler).pause(id: id)
    }

    public func resume(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await RuncCLI(handler: handler).resume(id: id)
    }

    public func checkpoint(id: String, handler: RuntimeHandler, imagePath: String, workPath: String,
                           leaveRunning: Bool, timeout: Duration) async throws(CrispError) {
        try await RuncCLI(handler: handler).checkpoint(id: id, imagePath: imagePath, workPath: workPath,
                                                        leaveRunning: leaveRunning, timeout: timeout)
    }
}
