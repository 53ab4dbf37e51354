import CRIAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Testing

/// A crispd started by a test as a subprocess, with its own temporary root, runroot, socket and
/// config directory. `stop()` (or deinit) terminates it by PID and removes every file it made.
final class CrispdProcess: @unchecked Sendable {
    // @unchecked: the Process is only touched by the test that owns this value, sequentially.
    let dir: String
    let process = Process()
    let logPath: String
    var root: String { dir + "/root" }
    var runRoot: String { dir + "/run" }
    var socket: String { dir + "/run/crisp.sock" }
    var configDir: String { dir + "/conf" }
    var networkDir: String { dir + "/net.d" }

    static var binary: String {
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

    init(dir existing: String? = nil) throws {
        dir = existing ?? (NSTemporaryDirectory() + "crispd-test-\(UUID().uuidString.prefix(8))")
        logPath = dir + "/crispd.log"
        try FileManager.default.createDirectory(atPath: dir + "/conf/crisp.conf.d", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/net.d", withIntermediateDirectories: true)
    }

    /// The flags every test crispd gets, so that nothing touches the host's real paths.
    func baseArguments() -> [String] {
        ["--config", configDir + "/crisp.conf", "--config-dir", configDir + "/crisp.conf.d",
         "--root", root, "--runroot", runRoot, "--listen", socket, "--network-dir", networkDir,
         "--registries-conf", dir + "/registries.conf", "--signature-policy", dir + "/policy.json"]
    }

    func writeConfig(_ text: String, name: String = "crisp.conf") throws {
        let path = name == "crisp.conf" ? configDir + "/crisp.conf" : configDir + "/crisp.conf.d/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Starts crispd and waits until its socket accepts connections.
    func start(extra: [String] = [], waitForSocket: Bool = true) throws {
        if !FileManager.default.fileExists(atPath: configDir + "/crisp.conf") { try writeConfig("") }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = baseArguments() + extra
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
        if waitForSocket { try waitUntilServing() }
    }

    func waitUntilServing(timeout: Duration = .seconds(30)) throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if log.contains("msg=\"serving CRI\"") { return }
            if !process.isRunning { throw TestFailure("crispd exited with \(process.terminationStatus):\n\(log)") }
            usleep(20_000)
        }
        throw TestFailure("crispd did not serve within \(timeout):\n\(log)")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends a signal and waits for exit; returns the exit status.
    @discardableResult
    func signal(_ sig: Int32) -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(process.processIdentifier, sig)
        if sig == SIGTERM || sig == SIGINT || sig == SIGKILL { process.waitUntilExit() }
        return process.isRunning ? -1 : process.terminationStatus
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    deinit { stop() }

    /// Runs `body` with RuntimeService and ImageService clients connected to this crispd.
    func withClients<R: Sendable>(
        _ body: @Sendable (Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>,
                           Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket),
                                                           transportSecurity: .plaintext)) { client in
            try await body(Runtime_V1_RuntimeService.Client(wrapping: client), Runtime_V1_ImageService.Client(wrapping: client))
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs crispd to completion with the given arguments; returns exit status and combined output.
func runCrispd(_ arguments: [String]) throws -> (status: Int32, output: String) {
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

let isRoot = getuid() == 0
