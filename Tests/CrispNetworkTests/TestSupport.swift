import CrispCore
import CrispNetwork
import CrispTestSupport
import Foundation
import Glibc
import Logging

/// A temporary directory removed by `cleanup()`.
struct TempDir {
    let path: String
    init(_ prefix: String = "crisp-net-test") throws {
        path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) throws {
        let p = path + "/" + name
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Close-on-exec from the start: Foundation's atomic write uses a plain mkstemp descriptor,
        // and a process another test spawns meanwhile can inherit it, so that executing the file
        // (a plugin script) fails with ETXTBSY.
        // Still written under another name and renamed, so a watcher never sees half a file.
        let tmp = p + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot write \(tmp): errno \(errno)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count, rename(tmp, p) == 0 else { throw TestFailure("cannot write \(p): errno \(errno)") }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

let testLogger: Logger = {
    var l = Logger(label: "crisp.network.test")
    l.logLevel = ProcessInfo.processInfo.environment["CRISP_TEST_DEBUG"] != nil ? .debug : .critical
    return l
}()

func json(_ s: String) throws -> JSONValue { try JSONValue.parse(Array(s.utf8), what: "test json") }

func sandboxID() -> String { SandboxID.random().rawValue }

func pod(_ id: String = sandboxID(), name: String = "p") -> PodNetworkIdentity {
    PodNetworkIdentity(id: id, name: name, namespace: "default", uid: "uid-\(id.prefix(8))")
}

/// Waits (without polling) for a readiness value on a watcher's stream, up to `timeout`.
func waitForReadiness(_ stream: AsyncStream<NetworkReadiness>, ready: Bool, timeout: Duration = .seconds(10)) async -> Bool {
    await waitForReadiness(stream, timeout: timeout) { $0.ready == ready }
}

/// Waits for the first update that `matches`; false when `timeout` passes first.
func waitForReadiness(_ stream: AsyncStream<NetworkReadiness>, timeout: Duration = .seconds(10),
                      _ matches: @escaping @Sendable (NetworkReadiness) -> Bool) async -> Bool {
    await answer(within: timeout) {
        for await r in stream where matches(r) { return true }
        return false
    }}
