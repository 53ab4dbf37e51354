import CRIAPI
import CrispOS
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// The CRI steps integration tests repeat: a crispd with busybox seeded, a pod, a started
/// container, ExecSync, status, removal. Each is one or two RPCs, as the kubelet makes them.
enum CRI {
    typealias Client = Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>

    /// A crispd with busybox seeded and runc's state in the test directory.
    static func world(extra: [String] = []) async throws -> PodSandboxTests.World {
        let crispd = try CrispdProcess()
        try await ContainerTests.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"] + extra)
        return PodSandboxTests.World(crispd: crispd, cgroupParent: "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())")
    }

    static func runPod(_ runtime: Client, _ name: String, world: PodSandboxTests.World, sharedPID: Bool = false,
                       configure: (inout Runtime_V1_PodSandboxConfig) -> Void = { _ in }) async throws -> (id: String, config: Runtime_V1_PodSandboxConfig) {
        var run = Runtime_V1_RunPodSandboxRequest()
        run.config = PodSandboxTests.podConfig(name, cgroupParent: world.cgroupParent)
        run.config.logDirectory = world.crispd.dir + "/pod-logs/" + name
        // The kubelet asks for CONTAINER unless the pod spec shares the process namespace.
        run.config.linux.securityContext.namespaceOptions.pid = sharedPID ? .pod : .container
        configure(&run.config)
        return (try await runtime.runPodSandbox(run).podSandboxID, run.config)
    }

    static func startContainer(_ runtime: Client, pod: (id: String, config: Runtime_V1_PodSandboxConfig), _ name: String,
                               _ command: [String], configure: (inout Runtime_V1_ContainerConfig) -> Void = { _ in }) async throws -> String {
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = pod.id
        create.sandboxConfig = pod.config
        create.config = ContainerTests.containerConfig(name, command, logPath: name + ".log")
        configure(&create.config)
        let id = try await runtime.createContainer(create).containerID
        var start = Runtime_V1_StartContainerRequest()
        start.containerID = id
        _ = try await runtime.startContainer(start)
        return id
    }

    static func exec(_ runtime: Client, _ id: String, _ script: String) async throws -> (code: Int32, out: String) {
        var exec = Runtime_V1_ExecSyncRequest()
        exec.containerID = id
        exec.cmd = ["/bin/sh", "-c", script]
        exec.timeout = 10
        let r = try await runtime.execSync(exec)
        return (r.exitCode, String(decoding: r.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func status(_ runtime: Client, _ id: String) async throws -> Runtime_V1_ContainerStatus {
        var r = Runtime_V1_ContainerStatusRequest()
        r.containerID = id
        return try await runtime.containerStatus(r).status
    }

    /// Exits arrive through inotify; the test only waits for the daemon to have seen one.
    static func waitExited(_ runtime: Client, _ id: String, within: Duration = .seconds(20)) async throws -> Runtime_V1_ContainerStatus {
        let deadline = ContinuousClock.now + within
        var s = try await status(runtime, id)
        while s.state != .containerExited, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            s = try await status(runtime, id)
        }
        return s
    }

    static func removePod(_ runtime: Client, _ id: String) async throws {
        var stop = Runtime_V1_StopPodSandboxRequest()
        stop.podSandboxID = id
        _ = try await runtime.stopPodSandbox(stop)
        var remove = Runtime_V1_RemovePodSandboxRequest()
        remove.podSandboxID = id
        _ = try await runtime.removePodSandbox(remove)
    }

    static func conmonCount(mentioning id: String) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            guard Int(pid) != nil, let cmd = readSmallFile("/proc/\(pid)/cmdline") else { return false }
            return cmd.hasPrefix("/usr/bin/conmon") && cmd.contains(id)
        }.count
    }
}
