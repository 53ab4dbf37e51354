public import CRIAPI
public import CrispOS
import CrispRuntime
public import Foundation
public import GRPCCore
public import GRPCNIOTransportHTTP2Posix

/// A crispd started by a test as a subprocess, with its own temporary root, runroot, socket and
/// config directory. `stop()` (or deinit) terminates it by PID and removes every file it made.
public final class CrispdProcess: @unchecked Sendable {
    // @unchecked: used by the one test that owns it; the exit status is behind a lock.
    public let dir: String
    public let logPath: String
    /// crispd is started with posix_spawn and reaped by a waitpid thread of our own: Foundation's
    /// Process left a SIGKILLed crispd unreaped and spun in waitUntilExit.
    public private(set) var pid: Int32 = 0
    private let exitStatus = ExitBox()
    public var processIdentifier: Int32 { pid }
    public var isRunning: Bool { pid != 0 && exitStatus.value == nil }
    /// crispd's --root; a test may put it elsewhere (on a loop-mounted filesystem) before start.
    public lazy var root: String = dir + "/root"
    public var runRoot: String { dir + "/run" }
    public var socket: String { dir + "/run/crisp.sock" }
    public var configDir: String { dir + "/conf" }
    public var networkDir: String { dir + "/net.d" }
    /// The crispd to run (an installed copy, for the install test) and its environment.
    public var executable = CrispdProcess.binary
    public var environment = Spawn.baseEnvironment

    public static var binary: String {
        if let b = ProcessInfo.processInfo.environment["CRISPD_BIN"] { return b }
        // swift test runs the bundle from the build's bin directory, where crispd is built too.
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = argv0.deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("crispd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/debug/crispd"
    }

    public init(dir existing: String? = nil) throws {
        dir = existing ?? (NSTemporaryDirectory() + "crispd-test-\(UUID().uuidString.prefix(8))")
        logPath = dir + "/crispd.log"
        try FileManager.default.createDirectory(atPath: dir + "/conf/crisp.conf.d", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/net.d", withIntermediateDirectories: true)
        // crispd refuses to pull without a signature policy file; tests accept every image.
        if !FileManager.default.fileExists(atPath: dir + "/policy.json") {
            try #"{"default": [{"type": "insecureAcceptAnything"}]}"#.write(toFile: dir + "/policy.json", atomically: true, encoding: .utf8)
        }
    }

    /// The flags every test crispd gets, so that nothing touches the host's real paths.
    public func baseArguments() -> [String] {
        ["--config", configDir + "/crisp.conf", "--config-dir", configDir + "/crisp.conf.d",
         "--root", root, "--runroot", runRoot, "--listen", socket, "--network-dir", networkDir,
         "--registries-conf", dir + "/registries.conf", "--signature-policy", dir + "/policy.json"]
    }

    public func writeConfig(_ text: String, name: String = "crisp.conf") throws {
        let path = name == "crisp.conf" ? configDir + "/crisp.conf" : configDir + "/crisp.conf.d/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Starts crispd and waits until its socket accepts connections.
    public func start(extra: [String] = [], waitForSocket: Bool = true) async throws {
        // Infra containers use crisp's own pause program unless a test configures a pause image.
        if !FileManager.default.fileExists(atPath: configDir + "/crisp.conf") { try writeConfig("[crisp.image]\npause_image = \"\"\n") }
        let fd = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot open \(logPath)") }
        defer { close(fd) }
        var o = Spawn.Options(path: executable, arguments: baseArguments() + extra, environment: environment)
        o.descriptors = [1: fd, 2: fd]
        let child = try Spawn.start(o)
        pid = child.pid
        let box = exitStatus
        Thread { box.set(child.waitBlocking()) }.start()
        if waitForSocket { try await waitUntilServing() }
    }

    public func waitUntilServing(timeout: Duration = .seconds(30)) async throws {
        try await waitForLog("msg=\"serving CRI\"", timeout: timeout)
    }

    /// Waits until crispd's log holds `text`, woken by inotify as the log grows (on a thread of
    /// its own, not the test's). Fails when crispd exits first: an exit need not write the log,
    /// so the wait also wakes every half second to look.
    public func waitForLog(_ text: String, timeout: Duration) async throws {
        let watcher = try InotifyWatcher()
        defer { watcher.stop() }
        _ = try watcher.add(logPath, mask: [.modify])
        let deadline = ContinuousClock.now + timeout
        while true {
            if log.contains(text) { return }
            if !isRunning { throw TestFailure("crispd exited with \(exitStatus.value ?? -1) before logging \(text):\n\(log)") }
            let left = deadline - ContinuousClock.now
            if left <= .zero { throw TestFailure("crispd did not log \(text) within \(timeout):\n\(log)") }
            _ = await runOnThread(name: "crispd-log") { watcher.next(timeout: min(left, .milliseconds(500))) }
        }
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a signal and waits for exit; returns the exit status.
    /// Sends a signal; for SIGTERM, SIGINT and SIGKILL waits (at most 60 s) for the exit and
    /// returns the exit status (128+signal when killed).
    @discardableResult
    public func signal(_ sig: Int32) -> Int32 {
        guard isRunning else { return exitStatus.value ?? -1 }
        kill(pid, sig)
        if sig == SIGTERM || sig == SIGINT || sig == SIGKILL { return exitStatus.wait(seconds: 60) ?? -1 }
        return -1
    }

    public func stop() {
        if isRunning {
            kill(pid, SIGTERM)
            if exitStatus.wait(seconds: 30) == nil { kill(pid, SIGKILL); _ = exitStatus.wait(seconds: 30) }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    deinit { stop() }

    /// Runs `body` with a client of crisp's own image API (crisp.v1.Images) on this crispd.
    public func withCrispImages<R: Sendable>(_ body: @Sendable (Crisp_V1_Images.Client<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
        try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket),
                                                           transportSecurity: .plaintext)) { client in
            try await body(Crisp_V1_Images.Client(wrapping: client))
        }
    }

    /// Runs `body` with RuntimeService and ImageService clients connected to this crispd.
    public func withClients<R: Sendable>(
        _ body: @Sendable (Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>,
                           Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket),
                                                           transportSecurity: .plaintext)) { client in
            try await body(Runtime_V1_RuntimeService.Client(wrapping: client), Runtime_V1_ImageService.Client(wrapping: client))
        }
    }
}

/// The exit status of a child, set once by its reaper thread.
public final class ExitBox: @unchecked Sendable {
    // @unchecked: every access goes through the condition's lock.
    private let condition = NSCondition()
    private var status: Int32?
    public init() {}
    public var value: Int32? { condition.lock(); defer { condition.unlock() }; return status }
    public func set(_ s: Int32) { condition.lock(); status = s; condition.broadcast(); condition.unlock() }
    public func wait(seconds: Double) -> Int32? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while status == nil { if !condition.wait(until: deadline) { break } }
        return status
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Runs crispd to completion with the given arguments; returns exit status and combined output.
public func runCrispd(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CrispdProcess.binary)
    p.arguments = arguments
    let out = NSTemporaryDirectory() + "crispd-out-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: out) }
    let h = FileHandle(forWritingAtPath: out)
    p.standardOutput = h
    p.standardError = h
    try p.run()
    p.waitUntilExit()
    return (p.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
}

public let isRoot = getuid() == 0
