public import CrispCore
public import CrispOCI
public import Foundation
import CrispOS
import Glibc

/// The seam between the container service and the OCI runtime; `ConmonRuntime` is the real one.
public protocol OCIRuntime: Sendable {
    func create(spec: RuntimeSpec, options: Conmon.CreateOptions) async throws(CrispError) -> Conmon.Created
    func start(id: String, handler: RuntimeHandler) async throws(CrispError)
    /// Sends `signal`, waits up to `timeout` for the exit, then SIGKILL. Returns the exit.
    func stop(id: String, handler: RuntimeHandler, signal: Int32, timeout: Duration) async throws(CrispError) -> ContainerExit?
    func execSync(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process, timeout: Duration?) async throws(CrispError) -> ExecResult
    func delete(id: String, handler: RuntimeHandler) async throws(CrispError)
    /// Starts a command for a streaming exec session (pipes, or a terminal when `tty`).
    func startExec(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process,
                   tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> StreamedExec
    func state(id: String, handler: RuntimeHandler) async throws(CrispError) -> RuncCLI.State
    func update(id: String, handler: RuntimeHandler, resourcesFile: String) async throws(CrispError)
    func pause(id: String, handler: RuntimeHandler) async throws(CrispError)
    func resume(id: String, handler: RuntimeHandler) async throws(CrispError)
    /// Dumps the running container's processes with CRIU into `imagePath`; the container keeps
    /// running when `leaveRunning`.
    func checkpoint(id: String, handler: RuntimeHandler, imagePath: String, workPath: String,
                    leaveRunning: Bool, timeout: Duration) async throws(CrispError)
}

public struct ExecResult: Sendable, Equatable {
    public static let outputCap = 16 << 20
    public var exitCode: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// True when stdout or stderr exceeded `outputCap` and was cut there.
    public var truncated: Bool
}

/// Drives runc/crun through conmon, writing bundles under `bundleRoot/ID`.
public struct ConmonRuntime: OCIRuntime {
    public let conmon: Conmon
    public let exits: ExitTracker

    public init(conmon: Conmon, exits: ExitTracker) {
        self.conmon = conmon
        self.exits = exits
    }

    public func create(spec: RuntimeSpec, options: Conmon.CreateOptions) async throws(CrispError) -> Conmon.Created {
        try Bundle.write(spec: spec, to: options.bundle)
        do {
            return try await conmon.create(options)
        } catch {
            // conmon failed before or during `runtime create`: remove what the runtime may have left.
            try? await RuncCLI(handler: options.handler).delete(id: options.id)
            throw error
        }
    }

    public func start(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await RuncCLI(handler: handler).start(id: id)
    }

    public func stop(id: String, handler: RuntimeHandler, signal: Int32, timeout: Duration) async throws(CrispError) -> ContainerExit? {
        if let done = await exits.exit(of: id) { return done }
        let cli = RuncCLI(handler: handler)
        if timeout > .zero {
            do { try await cli.kill(id: id, signal: signal) } catch where error.code == .notFound {
                return await exits.exit(of: id)
            }
            if let e = await exits.wait(for: id, timeout: timeout) { return e }
        }
        do { try await cli.kill(id: id, signal: SIGKILL, all: true) } catch where error.code == .notFound {
            // The runtime has no such container (a reboot emptied its state, or it was deleted):
            // no exit file is coming, so waiting for one only cost 10 s per container.
            return await exits.exit(of: id)
        } catch {
            // A container that already stopped refuses signals; its exit file is on its way.
            if !(error.message.contains("not running") || error.message.contains("stopped")) { throw error }
        }
        return await exits.wait(for: id, timeout: .seconds(10))
    }

    public func execSync(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process, timeout: Duration?) async throws(CrispError) -> ExecResult {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crisp-exec-\(UUID().uuidString)").path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw CrispError(.internal, "cannot create \(dir): \(error.localizedDescription)")
        }
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

    public func delete(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await RuncCLI(handler: handler).delete(id: id)
    }

    public func state(id: String, handler: RuntimeHandler) async throws(CrispError) -> RuncCLI.State {
        try await RuncCLI(handler: handler).state(id: id)
    }

    public func update(id: String, handler: RuntimeHandler, resourcesFile: String) async throws(CrispError) {
        try await RuncCLI(handler: handler).update(id: id, resourcesFile: resourcesFile)
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

/// Bundle files and records: written atomically (temp, optional fsync, rename).
public enum Bundle {
    public static func write(spec: RuntimeSpec, to bundle: String) throws(CrispError) {
        do { try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true) } catch {
            throw CrispError(.internal, "cannot create bundle \(bundle): \(error.localizedDescription)")
        }
        // Read by the runtime at once; after a power loss the container is gone with it, so the
        // file need not reach the disk.
        try writeJSON(spec, to: bundle + "/config.json", durable: false)
    }

    /// `durable: false` skips the fsync: the rename still makes the write all-or-nothing for a
    /// crashed process, only not for a power loss (`storage_sync = none`).
    public static func writeJSON(_ value: some Encodable, to path: String, durable: Bool = true) throws(CrispError) {
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            data = try encoder.encode(value)
        } catch {
            throw CrispError(.internal, "cannot encode \(path): \(error)")
        }
        try AtomicFile.write(data, to: path, durable: durable)
    }
}

/// Records and bundle files (mode 0600) through CrispOS's atomic write, with crisp's typed errors.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, durable: Bool = true) throws(CrispError) {
        do { try writeFileAtomically(path, bytes: Array(data), mode: 0o600, durable: durable) } catch {
            throw CrispError(.internal, "cannot write \(path)", cause: error as? SystemCallError)
        }
    }
}
