import CrispCore
import Foundation
import Testing
@testable import CrispRuntime

@Suite struct RuncStateFileTests {
    static func state(pidNamespacePath: String) -> String {
        #"{"id":"c1","init_process_pid":4242,"init_process_start":8185048,"created":"2026-12-01T02:00:00Z","config":{"rootfs":"/r","namespaces":[{"type":"NEWNS","path":""},{"type":"NEWNET","path":"/var/run/netns/crisp-p"},{"type":"NEWPID","path":"\#(pidNamespacePath)"}]},"cgroup_paths":{"pids":"/sys/fs/cgroup/pids/crisp/crisp-c1"}}"#
    }

    @Test func theInitProcessAndItsPIDNamespaceAreRead() throws {
        let dir = (path: NSTemporaryDirectory() + "runc-state-\(UUID().uuidString.prefix(8))", ())
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try FileManager.default.createDirectory(atPath: dir.path + "/own", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path + "/shared", withIntermediateDirectories: true)
        try Self.state(pidNamespacePath: "").write(toFile: dir.path + "/own/state.json", atomically: true, encoding: .utf8)
        try Self.state(pidNamespacePath: "/proc/10634/ns/pid").write(toFile: dir.path + "/shared/state.json", atomically: true, encoding: .utf8)
        let own = try #require(RuncStateFile.read(root: dir.path, id: "own"))
        #expect(own.initProcessPID == 4242 && own.initProcessStart == 8185048 && own.ownsPIDNamespace)
        #expect(RuncStateFile.read(root: dir.path, id: "shared")?.ownsPIDNamespace == false)
        #expect(RuncStateFile.read(root: dir.path, id: "missing") == nil)
        #expect(RuncStateFile.read(root: dir.path, id: "../own") == nil)
        // The whole of a container in a shared PID namespace is runc's to find (its cgroup).
        #expect(RuncStateFile.read(root: dir.path, id: "shared")?.signalInit(SIGKILL, wholeContainer: true) == nil)
    }
}
