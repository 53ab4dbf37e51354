public import CRIAPI
public import CrispOS
import CrispTestSupport
public import Foundation
public import GRPCCore
public import GRPCNIOTransportHTTP2Posix
import Synchronization

/// The CRI steps integration tests repeat: a crispd with busybox seeded, a pod, a started
/// container, ExecSync, status, removal. Each is one or two RPCs, as the kubelet makes them.
public enum CRI {
    public typealias Client = Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>

    /// A crispd with busybox seeded and runc's state in the test directory.
    public static func world(extra: [String] = []) async throws -> CRIWorld {
        let crispd = try CrispdProcess()
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"] + extra)
        return CRIWorld(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
    }

    public static func runPod(_ runtime: Client, _ name: String, world: CRIWorld, sharedPID: Bool = false,
                       configure: (inout Runtime_V1_PodSandboxConfig) -> Void = { _ in }) async throws -> (id: String, config: Runtime_V1_PodSandboxConfig) {
        var run = Runtime_V1_RunPodSandboxRequest()
        run.config = CRI.podConfig(name, cgroupParent: world.cgroupParent)
        run.config.logDirectory = world.crispd.dir + "/pod-logs/" + name
        // The kubelet asks for CONTAINER unless the pod spec shares the process namespace.
        run.config.linux.securityContext.namespaceOptions.pid = sharedPID ? .pod : .container
        configure(&run.config)
        return (try await runtime.runPodSandbox(run).podSandboxID, run.config)
    }

    public static func startContainer(_ runtime: Client, pod: (id: String, config: Runtime_V1_PodSandboxConfig), _ name: String,
                               _ command: [String], configure: (inout Runtime_V1_ContainerConfig) -> Void = { _ in }) async throws -> String {
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = pod.id
        create.sandboxConfig = pod.config
        create.config = CRI.containerConfig(name, command, logPath: name + ".log")
        configure(&create.config)
        let id = try await runtime.createContainer(create).containerID
        var start = Runtime_V1_StartContainerRequest()
        start.containerID = id
        _ = try await runtime.startContainer(start)
        return id
    }

    public static func exec(_ runtime: Client, _ id: String, _ script: String) async throws -> (code: Int32, out: String) {
        var exec = Runtime_V1_ExecSyncRequest()
        exec.containerID = id
        exec.cmd = ["/bin/sh", "-c", script]
        exec.timeout = 10
        let r = try await runtime.execSync(exec)
        return (r.exitCode, String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public static func status(_ runtime: Client, _ id: String) async throws -> Runtime_V1_ContainerStatus {
        var r = Runtime_V1_ContainerStatusRequest()
        r.containerID = id
        return try await runtime.containerStatus(r).status
    }

    /// Waits for crispd to report the container exited: woken by its stopped event, with the
    /// status read once the event stream is open, so an exit just before it is not missed.
    public static func waitExited(_ runtime: Client, _ id: String, within: Duration = .seconds(20)) async throws -> Runtime_V1_ContainerStatus {
        let events = try await EventRecorder.start(runtime)
        defer { events.stop() }
        let s = try await status(runtime, id)
        if s.state == .containerExited { return s }
        _ = await events.wait(within: within) { $0.contains { $0.containerID == id && $0.containerEventType == .containerStoppedEvent } }
        return try await status(runtime, id)
    }

    public static func removePod(_ runtime: Client, _ id: String) async throws {
        var stop = Runtime_V1_StopPodSandboxRequest()
        stop.podSandboxID = id
        _ = try await runtime.stopPodSandbox(stop)
        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = id
        _ = try await runtime.removePodSandbox(remove)
    }

    public static func conmonCount(mentioning id: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard Int(pid) != nil, let cmd = readSmallFile("/proc/\(pid)/cmdline") else { return false }
            return cmd.hasPrefix("/usr/bin/conmon") && cmd.contains(id)
        }.count
    }
}

/// A GetContainerEvents stream, as the kubelet's evented PLEG holds one, whose events a test
/// keeps and waits on. `start` returns once crispd has answered the call, which it does only
/// after subscribing: every event from then on is seen.
public final class EventRecorder: Sendable {
    public typealias Event = Runtime_V1_ContainerEventResponse
    private struct State {
        var items: [Event] = []
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: AsyncStream<Void>.Continuation] = [:]
    }
    private let state = Mutex(State())
    private let reader = Mutex<Task<Void, any Error>?>(nil)

    private init() {}

    public static func start(_ runtime: CRI.Client) async throws -> EventRecorder {
        let recorder = EventRecorder()
        let (opened, open) = AsyncThrowingStream.makeStream(of: Void.self)
        let task = Task {
            defer { recorder.finished() }
            do {
                try await runtime.getContainerEvents(Runtime_V1_GetEventsRequest()) { response in
                    open.finish()
                    for try await e in response.messages { recorder.append(e) }
                }
            } catch {
                open.finish(throwing: error)
                throw error
            }
        }
        recorder.reader.withLock { $0 = task }
        for try await _ in opened {}
        return recorder
    }

    public var items: [Event] { state.withLock { $0.items } }

    /// Waits until `condition` holds for the events so far; false when `within` passes first.
    public func wait(within: Duration, until condition: @escaping @Sendable ([Event]) -> Bool) async -> Bool {
        let (changes, change) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let key = state.withLock { s in
            s.nextWaiter += 1
            s.waiters[s.nextWaiter] = change
            return s.nextWaiter
        }
        defer { _ = state.withLock { $0.waiters.removeValue(forKey: key) } }
        change.yield()
        return await answer(within: within) {
            for await _ in changes where condition(self.items) { return true }
            return false
        }
    }

    public func stop() { reader.withLock { $0?.cancel() } }

    private func append(_ e: Event) {
        let waiters = state.withLock { s in
            s.items.append(e)
            return Array(s.waiters.values)
        }
        for w in waiters { w.yield() }
    }

    private func finished() {
        let waiters = state.withLock { Array($0.waiters.values) }
        for w in waiters { w.finish() }
    }
}
