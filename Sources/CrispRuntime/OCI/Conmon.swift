public import CrispCore
import CrispOS
import Foundation
import Glibc

/// Starts containers the way CRI-O does: conmon runs `RUNTIME create`, keeps the container's
/// stdio, writes the CRI log, records the exit code in the exit directory, and outlives crispd.
public struct Conmon: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public struct CreateOptions: Sendable {
        public var id: String
        public var name: String
        public var handler: RuntimeHandler
        public var bundle: String
        /// Directory conmon writes `ID` into, holding the exit code, when the container exits.
        public var exitDirectory: String
        public var logPath: String
        public var logSizeMax: Int = -1
        public var socketDirectory: String
        public var stdin = false
        public var stdinOnce = false
        public var terminal = false
        /// A CRIU image directory: conmon runs `runtime restore --detach` from it instead of
        /// `create`, and the container is running once the pid is reported.
        public var restorePath: String?
        public init(id: String, name: String, handler: RuntimeHandler, bundle: String, exitDirectory: String,
                    logPath: String, socketDirectory: String) {
            self.id = id
            self.name = name
            self.handler = handler
            self.bundle = bundle
            self.exitDirectory = exitDirectory
            self.logPath = logPath
            self.socketDirectory = socketDirectory
        }
    }

    public struct Created: Sendable, Equatable {
        /// The container's init process.
        public var pid: Int32
        /// The long-lived conmon process.
        public var conmonPID: Int32
    }

    func arguments(_ o: CreateOptions) -> [String] {
        var a = ["--api-version", "1", "-c", o.id, "-u", o.id, "-n", o.name,
                 "-r", o.handler.path, "-b", o.bundle, "-p", o.bundle + "/pidfile", "-P", o.bundle + "/conmon.pid",
                 "--exit-dir", o.exitDirectory, "-l", "k8s-file:" + o.logPath, "--log-level", "error",
                 "--socket-dir-path", o.socketDirectory, "--full-attach", "--syslog"]
        if o.logSizeMax > 0 { a += ["--log-size-max", String(o.logSizeMax)] }
        for arg in o.handler.globalArguments { a += ["--runtime-arg", arg] }
        if o.handler.systemdCgroup { a.append("-s") }
        if o.stdin { a.append("-i") }
        if o.stdin && !o.stdinOnce { a.append("--leave-stdin-open") }
        if o.terminal { a.append("-t") }
        if let restore = o.restorePath { a += ["--restore", restore] }
        return a
    }

    /// Runs conmon and waits for it to report the container's pid through the sync pipe, or the
    /// runtime's error. The container is then `created`, not yet running.
    public func create(_ o: CreateOptions) async throws(CrispError) -> Created {
        let sync = try Pipe2()
        var spawn = Spawn.Options(path: path, arguments: arguments(o),
                                  environment: Spawn.baseEnvironment + ["_OCI_SYNCPIPE=3"])
        spawn.descriptors[3] = sync.write
        spawn.directory = o.bundle
        let child: SpawnedChild
        do { child = try Spawn.start(spawn) } catch {
            sync.closeBoth()
            throw error
        }
        sync.closeWrite()
        // conmon forks itself into the background; its first process exits once the child is set up.
        let status = await child.wait()
        // The first message is the pid (or the error); our read end is then closed.
        let bytes = await runOnThread(name: "crisp-conmon") { sync.readLine() }
        sync.closeRead()
        let message = ConmonSyncMessage.parse(bytes)
        guard let pidValue = message.pid, pidValue > 0 else {
            let why = message.message ?? (status != 0 ? "conmon exited with \(status)" : "conmon reported no pid")
            throw CrispError(ConmonSyncMessage.code(of: why), "creating container \(o.id) with \(o.handler.name) failed: \(why)")
        }
        let conmonPID = (try? String(contentsOfFile: o.bundle + "/conmon.pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        return Created(pid: Int32(pidValue), conmonPID: conmonPID)
    }
}

/// conmon writes one JSON object per line to the sync pipe: `{"data": PID}` on success,
/// `{"data": -1, "message": "..."}` on failure.
enum ConmonSyncMessage {
    /// A command the image cannot run is the request's fault, not the runtime's: runc reports
    /// it at create, as `exec: "CMD": executable file not found in $PATH` and the like.
    static func code(of why: String) -> CrispError.Code {
        let requestFaults = ["executable file not found", "exec format error", "is a directory"]
        if why.contains("exec:"), requestFaults.contains(where: why.contains) || why.contains("no such file or directory") {
            return .invalidArgument
        }
        return .internal
    }

    static func parse(_ bytes: [UInt8]) -> (pid: Int?, message: String?) {
        var pid: Int?
        var message: String?
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { continue }
            if let d = object["data"] as? Int { pid = d }
            if let m = object["message"] as? String { message = m }
        }
        return (pid, message)
    }
}
