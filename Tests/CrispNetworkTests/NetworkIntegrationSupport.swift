import CrispCore
import CrispNetwork
import Foundation
import Glibc
import Testing

/// Root-only integration fixtures: a private network_dir, bridge `crtest<N>`, subnet
/// 10.250.<N>.0/24 with host-local state in a temp dir, pins under /var/run/netns, and a
/// clean-up that runs DEL for every pod, removes the bridge, stops the processes the test
/// started (by PID) and deletes the temp dir — also when the test failed.
enum RootNetworking {
    static let pluginDir = "/usr/lib/cni"

    static var pinnsPath: String? {
        if let p = ProcessInfo.processInfo.environment["CRISP_PINNS"] { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" {
            let c = dir.appendingPathComponent("crisp-pinns").path
            if FileManager.default.isExecutableFile(atPath: c) { return c }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// Root, the Debian CNI plugins, busybox, ip and crisp-pinns are all there.
    static var available: Bool {
        getuid() == 0 && pinnsPath != nil
            && ["bridge", "host-local", "portmap", "bandwidth", "loopback"].allSatisfy {
                FileManager.default.isExecutableFile(atPath: pluginDir + "/" + $0)
            }
            && FileManager.default.isExecutableFile(atPath: "/bin/busybox")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }
}

final class NetworkFixture: @unchecked Sendable {
    // @unchecked: mutable fields (pods, processes) are only touched under `lock`.
    let n: Int
    let dir: TempDir
    let bridge: String
    let subnet: String
    var networkDir: String { dir.path + "/net.d" }
    var ipamDir: String { dir.path + "/ipam" }
    var cacheDir: String { dir.path + "/cache" }
    let namespaces: PinnsNamespaces
    private let lock = NSLock()
    private var pods: Set<String> = []
    private var processes: [Process] = []
    private var managers: [PodNetworkManager] = []

    init(_ n: Int) throws {
        self.n = n
        dir = try TempDir("crisp-net-it\(n)")
        bridge = "crtest\(n)"
        subnet = "10.250.\(n).0/24"
        namespaces = PinnsNamespaces(pinnsPath: RootNetworking.pinnsPath!, pinDir: "/var/run")
        try FileManager.default.createDirectory(atPath: networkDir, withIntermediateDirectories: true)
    }

    /// A bridge + host-local plugin object for this fixture.
    /// With `ipv6`, a second range fd00:250:<N>::/64 (dual stack).
    func bridgePlugin(ipv6: Bool = false) -> String {
        let v6 = ipv6 ? #",[{"subnet":"fd00:250:\#(n)::/64"}]"# : ""
        return #"{"type":"bridge","bridge":"\#(bridge)","isGateway":true,"ipMasq":false,"hairpinMode":true,"# +
            #""ipam":{"type":"host-local","dataDir":"\#(ipamDir)","ranges":[[{"subnet":"\#(subnet)"}]\#(v6)],"routes":[{"dst":"0.0.0.0/0"}]}}"#
    }

    func writeConflist(name: String = "crtest", file: String = "10-crtest.conflist", extraPlugins: [String] = [],
                       ipv6: Bool = false) throws {
        let plugins = ([bridgePlugin(ipv6: ipv6)] + extraPlugins).joined(separator: ",")
        try dir.write("net.d/" + file, #"{"cniVersion":"1.0.0","name":"\#(name)","plugins":[\#(plugins)]}"#)
    }

    func manager(pluginDirs: [String] = [RootNetworking.pluginDir]) -> PodNetworkManager {
        let m = PodNetworkManager(options: PodNetworkOptions(networkDir: networkDir, pluginDirs: pluginDirs, cacheDir: cacheDir),
                                  namespaces: namespaces, logger: testLogger)
        lock.withLock { managers.append(m) }
        return m
    }

    func track(pod id: String) { _ = lock.withLock { pods.insert(id) } }

    /// Starts a command (by absolute path); stopped by PID at clean-up.
    @discardableResult
    func start(_ path: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        lock.withLock { processes.append(p) }
        return p
    }

    /// host-local's allocation files (one per IP) for the network.
    func allocatedIPs(network: String = "crtest") -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: ipamDir + "/" + network)) ?? [])
            .filter { $0.hasPrefix("10.250.") || $0.hasPrefix("fd00:250:") }
    }

    func netnsExists(_ podID: String) -> Bool { access("/var/run/netns/crisp-" + podID, F_OK) == 0 }

    func cleanup() async {
        let (ps, procs, ms) = lock.withLock { (pods, processes, managers) }
        for p in procs where p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        let all = ms.isEmpty ? [manager()] : ms
        for id in ps {
            var done = false
            var lastError: (any Error)? = nil
            for m in all where !done {
                do { try await m.tearDown(podID: id); done = true } catch { lastError = error }
            }
            if !done {
                Issue.record("clean-up tearDown of \(id) failed: \(lastError.map { "\($0)" } ?? "")")
                try? await namespaces.remove(name: "crisp-" + id)
            }
        }
        for m in ms { m.stop() }
        _ = try? run("/usr/sbin/ip", ["link", "del", bridge])
        dir.cleanup()
    }
}

/// Runs the body, then the fixture's clean-up, whether the body threw or not.
func withFixture(_ n: Int, _ body: (NetworkFixture) async throws -> Void) async throws {
    let f = try NetworkFixture(n)
    do {
        try await body(f)
    } catch {
        await f.cleanup()
        throw error
    }
    await f.cleanup()
}

/// Runs a command to completion; returns (status, stdout+stderr).
@discardableResult
func run(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Runs a command inside a pod's netns with `ip netns exec`.
@discardableResult
func inPod(_ podID: String, _ args: [String]) throws -> (status: Int32, output: String) {
    try run("/usr/sbin/ip", ["netns", "exec", "crisp-" + podID] + args)
}

/// Sends an HTTP GET over a connected descriptor and returns the whole response (closes fd).
func httpGet(fd: Int32, path: String) -> String {
    defer { close(fd) }
    let req = Array("GET \(path) HTTP/1.0\r\nHost: x\r\n\r\n".utf8)
    _ = req.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

/// Starts busybox httpd inside a pod on `port` serving `body` at /index.html, and waits until
/// it accepts connections (dialing through crisp-pinns; bounded by `attempts`).
func startHTTPServer(_ f: NetworkFixture, podID: String, port: Int, body: String) async throws {
    let www = f.dir.path + "/www-\(podID.prefix(8))"
    try FileManager.default.createDirectory(atPath: www, withIntermediateDirectories: true)
    try body.write(toFile: www + "/index.html", atomically: true, encoding: .utf8)
    try f.start("/usr/sbin/ip", ["netns", "exec", "crisp-" + podID, "/bin/busybox", "httpd", "-f", "-p", String(port), "-h", www])
    let dialer = PortDialer(pinnsPath: RootNetworking.pinnsPath!)
    for _ in 0..<100 {
        if let fd = try? await dialer.dial(netnsPath: "/var/run/netns/crisp-" + podID, port: port) {
            close(fd)
            return
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestFailure("httpd in pod \(podID) did not listen on \(port)")
}
