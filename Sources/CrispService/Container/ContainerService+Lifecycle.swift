public import CrispCore
import CrispOCI
public import CrispRuntime
import CrispStorage
import Foundation
import Logging

extension ContainerService {
    /// Starts a created container. Operations on one container run one at a time, so a replayed
    /// StartContainer waits for the first and then finds the container running: runc is asked
    /// once.
    public func start(_ id: String) async throws(CrispError) {
        let found = try lookup(id)
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            guard let c = containers[found.id] else { throw .notFound("container \(found.id) was removed") }
            guard case .created = c.lifecycle else {
                throw .failedPrecondition("container \(c.id) is not in the created state; it cannot be started")
            }
            let handler = try handler(c.runtimeHandler)
            if let from = c.restoreFrom {
                let pid = try await restoreProcesses(c, handler: handler, from: from)
                guard var current = containers[c.id], case .created = current.lifecycle else { return }
                current.lifecycle = .running(pid: pid, startedAt: SandboxService.now())
                current.restoreFrom = nil
                current.restored = true
                try persist(current)
                try? FileManager.default.removeItem(atPath: from)
                emit(.started, current)
                return
            }
            try await runtime.start(id: c.id, handler: handler)
            let pid: Int32
            if let known = c.createdPID, known > 0 { pid = known } else {
                pid = (try? await runtime.state(id: c.id, handler: handler).pid) ?? 0
            }
            // Re-read: a container that exits at once may already have its exit recorded by now.
            guard var current = containers[c.id], case .created = current.lifecycle else { return }
            current.lifecycle = .running(pid: pid, startedAt: SandboxService.now())
            try persist(current)
            emit(.started, current)
        }
    }

    /// The image's stop signal (or SIGTERM), then SIGKILL after `timeout`; zero kills at once.
    /// Stopping a container that is not running succeeds.
    /// Unknown ids succeed, as in CRI-O: the kubelet retries stops of containers already gone.
    public func stop(_ id: String, timeout: Duration) async throws(CrispError) {
        let found: ContainerRecord
        do { found = try lookup(id) } catch where error.code == .notFound { return }
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            try await stopHeld(found.id, timeout: timeout)
        }
    }

    /// `stop` with the container's key held.
    func stopHeld(_ id: String, timeout: Duration) async throws(CrispError) {
        guard let c = containers[id] else { return }
        switch c.lifecycle {
        case .exited: return
        case .created:
            // Never started: there is no process to signal, only the runtime's record to end.
            try await runtime.delete(id: c.id, handler: try handler(c.runtimeHandler))
            guard var done = containers[id], case .created = done.lifecycle else { return }
            done.lifecycle = .exited(exitCode: 0, startedAt: 0, finishedAt: SandboxService.now(), reason: "Completed")
            try persist(done)
            emit(.stopped, done)
        case .running:
            let outcome = try await runtime.stop(id: c.id, handler: try handler(c.runtimeHandler),
                                                 signal: c.stopSignal, timeout: timeout)
            switch outcome {
            case .exited(let exit): exited(exit)
            case .noExitRecorded: break
            case .unknownToRuntime:
                guard var gone = containers[id], case .running(_, let startedAt) = gone.lifecycle else { return }
                // The runtime no longer knows it (the machine rebooted under a running container):
                // no exit will ever be reported, so it is recorded as ended with an unknown code.
                gone.lifecycle = .exited(exitCode: 255, startedAt: startedAt, finishedAt: SandboxService.now(), reason: "ContainerStatusUnknown")
                try persist(gone)
                logger.notice("container lost by the runtime recorded as exited (code 255)", metadata: ["container": "\(id)"])
                emit(.stopped, gone)
            }
        }
    }

    /// Removes the container, its bundle and its read-write layer. Unknown ids succeed.
    ///
    /// For a container whose process has exited, the runtime's delete (crisp's own rmdirs, or a
    /// runc run of 10–25 ms when runc has more to do) and the removal of the root filesystem
    /// run side by side: neither uses the other, since
    /// the container's mount namespace went with its last process. The bundle goes only after
    /// both, as the runtime's poststop hooks may still read it. A failed runtime delete leaves
    /// the record, and a retried remove finds the root filesystem gone, which it accepts.
    public func remove(_ id: String) async throws(CrispError) {
        let found: ContainerRecord
        do { found = try lookup(id) } catch where error.code == .notFound { return }
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            guard let c = containers[found.id] else { return }
            if case .running = c.lifecycle { try await stopHeld(c.id, timeout: .zero) }
            let handler = try handler(c.runtimeHandler)
            let exited = if case .exited = containers[c.id]?.lifecycle { true } else { false }
            if exited {
                let runtime = self.runtime
                let deleting = Task { () async -> CrispError? in
                    do throws(CrispError) { try await runtime.delete(id: c.id, handler: handler) } catch { return error }
                    return nil
                }
                let storageFailure: CrispError?
                do throws(CrispError) { try await removeRootFilesystem(c); storageFailure = nil } catch { storageFailure = error }
                if let failure = await deleting.value { throw failure }
                if let storageFailure { throw storageFailure }
            } else {
                try await runtime.delete(id: c.id, handler: handler)
                try await removeRootFilesystem(c)
            }
            try? FileManager.default.removeItem(atPath: "\(recordsDirectory)/\(c.id)")
            try? FileManager.default.removeItem(atPath: settings.exitDirectory + "/" + c.id)
            containers[c.id] = nil
            lastSamples[c.id] = nil
            reservations.release(c.reservationKey)
            logger.info("container removed", metadata: ["container": "\(c.id)"])
            emit(.deleted, c)
        }
    }

    /// Unmounts and removes the container's read-write layer; one already gone is not an error.
    private func removeRootFilesystem(_ c: ContainerRecord) async throws(CrispError) {
        let cid = ContainerID(uncheckedRawValue: c.id)
        if c.idmappedRootfs == true { unmountIdmappedRootfs(c.id) }
        do {
            _ = try await storage.unmountContainer(cid, force: true)
            try await storage.removeContainer(cid)
        } catch let e as CrispError where e.code == .notFound {
            // Already gone: a crash came between storage's removal and the record's.
        } catch {
            throw error as? CrispError ?? CrispError(.internal, "removing the root filesystem of \(c.id) failed: \(error)")
        }
    }

    public func stopAll(inSandbox sandboxID: String, timeout: Duration) async throws(CrispError) {
        for id in ids(inSandbox: sandboxID) { try await stop(id, timeout: timeout) }
    }

    public func removeAll(inSandbox sandboxID: String) async throws(CrispError) {
        for id in ids(inSandbox: sandboxID) { try await remove(id) }
        lastSamples["pod/" + sandboxID] = nil
    }

    /// Runs a command in a running container with its user, environment and capabilities.
    public func execSync(_ id: String, command: [String], timeout: Duration?) async throws(CrispError) -> ExecResult {
        let (c, process) = try execTarget(id, command: command)
        return try await runtime.execSync(id: c.id, handler: try handler(c.runtimeHandler), process: process, timeout: timeout)
    }

    /// The running container and its process spec (user, environment, capabilities) with
    /// `command` as the arguments and no terminal: what ExecSync and streaming exec run.
    func execTarget(_ id: String, command: [String]) throws(CrispError) -> (ContainerRecord, RuntimeSpec.Process) {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        guard !command.isEmpty else { throw .invalidArgument("exec needs a command") }
        var process: RuntimeSpec.Process
        do { process = try JSONDecoder().decode(RuntimeSpec.Process.self, from: c.processJSON) } catch {
            throw .internal("the process spec of container \(c.id) is unreadable")
        }
        process.args = command
        process.terminal = nil
        return (c, process)
    }
}
