public import CrispTestSupport
import Foundation
import Glibc

/// A real Debian `docker-registry` (distribution 2.8) on 127.0.0.1 at a free port, with its own
/// config and storage in a temp dir. `stop()` kills it by PID and removes the dir; call it from
/// `defer` (it is idempotent).
public final class TestRegistry: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read after; Process itself is
    // thread-safe for terminate/waitUntilExit.
    public struct Options: Sendable {
        /// htpasswd Basic auth with one user.
        public var basicAuth: (user: String, password: String)?
        public var schema1: Bool = false
        /// Serve HTTPS with this certificate and key (PEM files).
        public var tls: (certificate: String, key: String)?
        /// `auth: token` with this realm, service, issuer and root certificate bundle.
        public var token: (realm: String, service: String, issuer: String, rootCertBundle: String)?
        public init(basicAuth: (user: String, password: String)? = nil, schema1: Bool = false,
                    tls: (certificate: String, key: String)? = nil,
                    token: (realm: String, service: String, issuer: String, rootCertBundle: String)? = nil) {
            self.basicAuth = basicAuth
            self.schema1 = schema1
            self.tls = tls
            self.token = token
        }
    }

    public static let binary = "/usr/bin/docker-registry"
    public let port: Int
    public let dir: TempDirectory
    let process: Process

    /// `127.0.0.1:PORT`
    public var host: String { "127.0.0.1:\(port)" }

    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    public init(_ options: Options = Options()) async throws {
        dir = try TempDirectory("crisp-registry")
        do {
            port = try freePort()
            var auth = ""
            if let b = options.basicAuth {
                let hash = try runTool("/usr/bin/env", ["python3", "-c",
                    "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", b.password])
                try "\(b.user):\(hash.trimmingCharacters(in: .whitespacesAndNewlines))\n"
                    .write(toFile: dir.sub("htpasswd"), atomically: true, encoding: .utf8)
                auth = "auth:\n  htpasswd:\n    realm: crisp-test\n    path: \(dir.sub("htpasswd"))\n"
            }
            if let t = options.token {
                auth = "auth:\n  token:\n    realm: \(t.realm)\n    service: \(t.service)\n    issuer: \(t.issuer)\n    rootcertbundle: \(t.rootCertBundle)\n"
            }
            let schema1 = options.schema1 ? "compatibility:\n  schema1:\n    enabled: true\n" : ""
            let config = """
                version: 0.1
                log:
                  level: error
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: \(dir.sub("data"))
                  delete:
                    enabled: true
                validation:
                  manifests:
                    urls:
                      allow:
                        - ^https?://
                http:
                  addr: 127.0.0.1:\(port)
                \(options.tls.map { "  tls:\n    certificate: \($0.certificate)\n    key: \($0.key)\n" } ?? "")\(auth)\(schema1)
                """
            try config.write(toFile: dir.sub("config.yml"), atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = ["serve", dir.sub("config.yml")]
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            process = p
        } catch {
            dir.remove()
            throw error
        }
        do { try await waitForPort(port, process: process) } catch {
            stop()
            throw error
        }
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        dir.remove()
    }
}

/// A port that was free a moment ago on 127.0.0.1.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Waits until something accepts TCP connections on 127.0.0.1:port (10 s at most).
func waitForPort(_ port: Int, process: Process) async throws {
    for _ in 0..<200 {
        guard process.isRunning else { throw TestSupportError("process \(process.processIdentifier) exited with \(process.terminationStatus) before listening on \(port)") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if r == 0 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestSupportError("nothing listens on 127.0.0.1:\(port) after 10 s")
}

public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Runs a tool to completion and returns its stdout; throws on a non-zero exit.
@discardableResult
public func runTool(_ path: String, _ args: [String], stdin: [UInt8]? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    let input = Pipe()
    if stdin != nil { p.standardInput = input }
    try p.run()
    if let stdin {
        let h = input.fileHandleForWriting
        DispatchQueue.global().async {
            h.write(Data(stdin))
            try? h.close()
        }
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw TestSupportError("\(path) \(args.first ?? "") exited with \(p.terminationStatus)") }
    return String(decoding: data, as: UTF8.self)
}

/// Runs a filter tool over bytes (gzip -c, zstd -c) and returns its output.
public func filter(_ path: String, _ args: [String], _ bytes: [UInt8]) throws -> [UInt8] {
    let tmp = "/tmp/crisp-filter-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    try Data(bytes).write(to: URL(fileURLWithPath: tmp))
    defer { unlink(tmp) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args + [tmp]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw TestSupportError("\(path) exited with \(p.terminationStatus)") }
    return [UInt8](data)
}
