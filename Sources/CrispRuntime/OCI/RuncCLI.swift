public import CrispCore
public import CrispOS
import Foundation
import Glibc

/// The runc/crun command line (both accept the same verbs and flags for what crisp uses).
public struct RuncCLI: Sendable {
    public let handler: RuntimeHandler

    public init(handler: RuntimeHandler) { self.handler = handler }

    /// What `state` reports.
    public struct State: Decodable, Sendable, Equatable {
        public var id: String
        /// creating, created, running, stopped, paused
        public var status: String
        public var pid: Int32
        public var bundle: String?
    }

    func run(_ arguments: [String], timeout: Duration = .seconds(60)) async throws(CrispError) -> Spawn.Output {
        let o = Spawn.Options(path: handler.path, arguments: handler.globalArguments + arguments)
        let out = try await Spawn.run(o, timeout: timeout, cap: 1 << 20)
        if out.timedOut {
            throw CrispError(.deadlineExceeded, "\(handler.name) \(arguments.first ?? "") timed out after \(timeout)")
        }
        return out
    }

    func check(_ verb: String, _ id: String, _ out: Spawn.Output) throws(CrispError) {
        guard out.status == 0 else {
            let message = out.stderrText
            let code: CrispError.Code = message.contains("does not exist") || message.contains("not found") ? .notFound : .internal
            throw CrispError(code, "\(handler.name) \(verb) \(id) failed (exit \(out.status)): \(message)")
        }
    }

    public func start(id: String) async throws(CrispError) {
        try check("start", id, try await run(["start", id]))
    }

    public func kill(id: String, signal: Int32, all: Bool = false) async throws(CrispError) {
        try check("kill", id, try await run(["kill"] + (all ? ["--all"] : []) + [id, String(signal)]))
    }

    public func delete(id: String, force: Bool = true) async throws(CrispError) {
        let out = try await run(["delete"] + (force ? ["--force"] : []) + [id])
        if out.status != 0, out.stderrText.contains("does not exist") || out.stderrText.contains("not found") { return }
        try check("delete", id, out)
    }

    public func state(id: String) async throws(CrispError) -> State {
        let out = try await run(["state", id])
        try check("state", id, out)
        do { return try JSONDecoder().decode(State.self, from: Data(out.stdout)) } catch {
            throw CrispError(.internal, "\(handler.name) state \(id): unreadable output")
        }
    }

    /// Applies new resources from a JSON file in the runtime's `update --resources` format.
    /// A runtime that ran and refused the limits (the kernel would not take them: a memory limit
    /// below what the container uses, say) is the request's fault: FailedPrecondition, with its words.
    public func update(id: String, resourcesFile: String) async throws(CrispError) {
        do { try check("update", id, try await run(["update", "--resources", resourcesFile, id])) } catch where error.code == .internal {
            throw CrispError(.failedPrecondition, error.message)
        }
    }

    /// Runs a process in a running container, capturing its output; kills it after `timeout`.
    /// On timeout runc is killed, and so is the process it started (found through `pidFile`).
    public func exec(id: String, processFile: String, pidFile: String, timeout: Duration?, cap: Int) async throws(CrispError) -> Spawn.Output {
        let o = Spawn.Options(path: handler.path,
                              arguments: handler.globalArguments + ["exec", "--process", processFile, "--pid-file", pidFile, id])
        return try await Spawn.run(o, timeout: timeout, cap: cap) {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
                Glibc.kill(pid, SIGKILL)
            }
        }
    }

    /// Freezes every process of the container (cgroup freezer), so a checkpoint's memory images
    /// and its root filesystem changes are taken at one moment.
    public func pause(id: String) async throws(CrispError) {
        try check("pause", id, try await run(["pause", id]))
    }

    public func resume(id: String) async throws(CrispError) {
        try check("resume", id, try await run(["resume", id]))
    }

    /// `runtime checkpoint` through CRIU, as CRI-O runs it: file locks carried, the CRIU images in
    /// `imagePath`, CRIU's log and statistics in `workPath`.
    public func checkpoint(id: String, imagePath: String, workPath: String, leaveRunning: Bool,
                           timeout: Duration) async throws(CrispError) {
        let args = ["checkpoint", "--file-locks", "--image-path", imagePath, "--work-path", workPath]
            + (leaveRunning ? ["--leave-running"] : []) + [id]
        let out = try await run(args, timeout: timeout)
        guard out.status == 0 else {
            let log = (try? String(contentsOfFile: workPath + "/dump.log", encoding: .utf8))?
                .split(separator: "\n").filter { $0.contains("Error") }.suffix(3).joined(separator: "; ") ?? ""
            throw CrispError(.internal, "\(handler.name) checkpoint \(id) failed (exit \(out.status)): \(out.stderrText)"
                             + (log.isEmpty ? "" : " (CRIU: \(log))"))
        }
    }
}
