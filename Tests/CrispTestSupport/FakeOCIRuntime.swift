public import CrispCore
public import CrispOCI
public import CrispRuntime
import Foundation
import Synchronization

/// An `OCIRuntime` that keeps containers in memory: it records every call, can be told to fail
/// or to hold any step, and reports exits to an `ExitTracker` as conmon would. For service
/// tests that need no runc, conmon or root.
public final class FakeOCIRuntime: OCIRuntime {
    public enum Step: String, Sendable, CaseIterable {
        case create, start, stop, delete, state, update, pause, resume, exec, checkpoint
    }

    public struct Call: Sendable, Equatable {
        public var step: Step
        public var id: String
    }

    struct State {
        var containers: [String: RuntimeContainerState] = [:]
        var calls: [Call] = []
        var failures: [Step: CrispError] = [:]
        var gates: [Step: Gate] = [:]
        var nextPID: Int32 = 1000
    }

    private let state = Mutex(State())
    /// Where exits are reported, as conmon's exit files would be.
    public let exits: ExitTracker

    public init(exits: ExitTracker = ExitTracker()) { self.exits = exits }

    /// Every call so far, in order.
    public var calls: [Call] { state.withLock { $0.calls } }
    public func calls(_ step: Step) -> [String] { calls.filter { $0.step == step }.map(\.id) }
    /// The containers the runtime knows, by id.
    public var containers: [String: RuntimeContainerState] { state.withLock { $0.containers } }

    /// The next calls of `step` fail with `error` until `clearFailure`.
    public func fail(_ step: Step, with error: CrispError) { state.withLock { $0.failures[step] = error } }
    public func clearFailure(_ step: Step) { _ = state.withLock { $0.failures.removeValue(forKey: step) } }

    /// Calls of `step` wait at the returned gate until it is opened.
    public func hold(_ step: Step) -> Gate {
        let gate = Gate()
        state.withLock { $0.gates[step] = gate }
        return gate
    }

    /// Forgets every container, as a reboot empties the runtime's state directory.
    public func forgetAll() { state.withLock { $0.containers = [:] } }

    /// The container's process exits with `code`; the exit is reported at once.
    public func exit(_ id: String, code: Int32) async {
        let known = state.withLock { s -> Bool in
            guard s.containers[id] != nil else { return false }
            s.containers[id] = RuntimeContainerState(status: .stopped, pid: 0)
            return true
        }
        if known { await exits.record(ContainerExit(id: id, exitCode: code, at: Date())) }
    }

    private func enter(_ step: Step, _ id: String) async throws(CrispError) {
        let (failure, gate) = state.withLock { s in
            s.calls.append(Call(step: step, id: id))
            return (s.failures[step], s.gates[step])
        }
        if let gate { await gate.pass() }
        if let failure { throw failure }
    }

    private func notFound(_ id: String) -> CrispError { .notFound("fake runtime: container \(id) does not exist") }

    public func create(spec: RuntimeSpec, launch: ContainerLaunch) async throws(CrispError) -> LaunchedContainer {
        try await enter(.create, launch.id)
        return try state.withLock { s throws(CrispError) -> LaunchedContainer in
            guard s.containers[launch.id] == nil else { throw .alreadyExists("fake runtime: container \(launch.id) exists") }
            s.nextPID += 1
            let running = launch.restorePath != nil
            s.containers[launch.id] = RuntimeContainerState(status: running ? .running : .created, pid: s.nextPID)
            return LaunchedContainer(pid: s.nextPID, monitorPID: s.nextPID + 100_000)
        }
    }

    public func start(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await enter(.start, id)
        try state.withLock { s throws(CrispError) in
            guard let c = s.containers[id] else { throw notFound(id) }
            guard c.status == .created else { throw .failedPrecondition("fake runtime: container \(id) is \(c.status.rawValue)") }
            s.containers[id]?.status = .running
        }
    }

    public func stop(id: String, handler: RuntimeHandler, signal: Signal, timeout: Duration) async throws(CrispError) -> StopOutcome {
        try await enter(.stop, id)
        if let done = await exits.exit(of: id) { return .exited(done) }
        let known = state.withLock { $0.containers[id] != nil }
        guard known else { return .unknownToRuntime }
        await exit(id, code: signal == .kill || timeout == .zero ? 137 : 143)
        return await exits.exit(of: id).map(StopOutcome.exited) ?? .noExitRecorded
    }

    public func execSync(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process, timeout: Duration?) async throws(CrispError) -> ExecResult {
        try await enter(.exec, id)
        guard state.withLock({ $0.containers[id]?.status == .running }) else { throw notFound(id) }
        return ExecResult(exitCode: 0, stdout: Array(process.args.joined(separator: " ").utf8), stderr: [], truncated: false)
    }

    public func delete(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await enter(.delete, id)
        _ = state.withLock { $0.containers.removeValue(forKey: id) }
    }

    public func startExec(id: String, handler: RuntimeHandler, process: RuntimeSpec.Process,
                          tty: Bool, stdin: Bool, stdout: Bool, stderr: Bool) throws(CrispError) -> StreamedExec {
        throw CrispError(.unimplemented, "fake runtime: streaming exec needs a real runtime")
    }

    public func state(id: String, handler: RuntimeHandler) async throws(CrispError) -> RuntimeContainerState {
        try await enter(.state, id)
        guard let c = state.withLock({ $0.containers[id] }) else { throw notFound(id) }
        return c
    }

    public func update(id: String, handler: RuntimeHandler, resources: RuntimeSpec.Resources) async throws(CrispError) {
        try await enter(.update, id)
        guard state.withLock({ $0.containers[id] != nil }) else { throw notFound(id) }
    }

    public func pause(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await enter(.pause, id)
    }

    public func resume(id: String, handler: RuntimeHandler) async throws(CrispError) {
        try await enter(.resume, id)
    }

    public func checkpoint(id: String, handler: RuntimeHandler, imagePath: String, workPath: String,
                           leaveRunning: Bool, timeout: Duration) async throws(CrispError) {
        try await enter(.checkpoint, id)
    }
}

/// Holds whoever arrives until `open()`, then lets everyone through, then and after. A test can
/// wait for the first arrival with `reached()`.
public final class Gate: Sendable {
    private struct State {
        var open = false
        var arrived = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var watching: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    public init() {}

    public func open() {
        let waiting = state.withLock { s in
            s.open = true
            defer { s.waiting = [] }
            return s.waiting
        }
        for w in waiting { w.resume() }
    }

    /// Returns once somebody has arrived at the gate (held or, when open, passed).
    public func reached() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.arrived { return true }
                s.watching.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    func pass() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let (now, watchers) = state.withLock { s in
                s.arrived = true
                defer { s.watching = [] }
                if s.open { return (true, s.watching) }
                s.waiting.append(c)
                return (false, s.watching)
            }
            for w in watchers { w.resume() }
            if now { c.resume() }
        }
    }
}
