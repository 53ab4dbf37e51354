public import CrispCore
import CrispOS
import Foundation
import Glibc

/// A CNI operation, as passed in CNI_COMMAND.
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD", del = "DEL", check = "CHECK", status = "STATUS", gc = "GC", version = "VERSION"
}

/// One plugin invocation: the binary, the CNI_* environment and the config on stdin.
public struct CNIExecRequest: Sendable, Equatable {
    public var pluginType: String
    public var pluginPath: String
    public var command: CNICommand
    /// Only the CNI_* variables; the executor adds the process environment (PATH for iptables).
    public var cniEnvironment: [String: String]
    public var stdin: [UInt8]
    public var timeout: Duration

    public init(pluginType: String, pluginPath: String, command: CNICommand, cniEnvironment: [String: String],
                stdin: [UInt8], timeout: Duration) {
        self.pluginType = pluginType
        self.pluginPath = pluginPath
        self.command = command
        self.cniEnvironment = cniEnvironment
        self.stdin = stdin
        self.timeout = timeout
    }
}

/// What a plugin run produced. Interpreting it (exit status, error JSON) is the runner's job.
public struct CNIExecOutput: Sendable, Equatable {
    public var exitStatus: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    public init(exitStatus: Int32, stdout: [UInt8], stderr: [UInt8] = []) {
        self.exitStatus = exitStatus
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// The side-effect seam of CNI: finding and running plugin binaries. `ProcessCNIExecutor` runs
/// real binaries; `FakeCNIExecutor` answers from a script for tests. Implementations must be
/// safe to call concurrently.
public protocol CNIExecutor: Sendable {
    /// The path of plugin `type`, searched in `dirs` in order. Throws `notFound` naming the
    /// plugin and every directory searched.
    func findPlugin(_ type: String, in dirs: [String]) throws(CrispError) -> String
    /// Runs the plugin; throws `deadlineExceeded` when it outlives `request.timeout` (it is
    /// killed), `internal` when it cannot be started.
    func execute(_ request: CNIExecRequest) async throws(CrispError) -> CNIExecOutput
}

extension CNIExecutor {
    /// The error every executor gives for a plugin it cannot find, so callers see one message.
    public static func missingPlugin(_ type: String, _ dirs: [String]) -> CrispError {
        CrispError(.notFound, "CNI plugin \"\(type)\" not found in plugin_dirs [\(dirs.joined(separator: ", "))]")
    }
}

/// Runs plugin binaries as child processes (`Spawn.run`): the config on stdin, CNI_* in the
/// environment, stdout and stderr captured, killed when the request's timeout passes.
public struct ProcessCNIExecutor: CNIExecutor {
    public init() {}

    public func findPlugin(_ type: String, in dirs: [String]) throws(CrispError) -> String {
        for dir in dirs {
            let path = dir + "/" + type
            var st = stat()
            if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(path, X_OK) == 0 { return path }
        }
        throw Self.missingPlugin(type, dirs)
    }

    public func execute(_ request: CNIExecRequest) async throws(CrispError) -> CNIExecOutput {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CNI_") }
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        env.merge(request.cniEnvironment) { _, new in new }
        let o = Spawn.Options(path: request.pluginPath, environment: env.map { "\($0.key)=\($0.value)" }.sorted())
        let out = try await Spawn.run(o, stdin: request.stdin, timeout: request.timeout)
        if out.timedOut {
            throw CrispError(.deadlineExceeded,
                             "CNI plugin \"\(request.pluginType)\" \(request.command.rawValue) did not finish within \(request.timeout) and was killed")
        }
        return CNIExecOutput(exitStatus: out.status, stdout: out.stdout, stderr: out.stderr)
    }
}
