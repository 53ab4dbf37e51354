public import CrispConfig
import CrispCore
public import CrispNetwork
import CrispRuntime
public import CrispService
public import CrispStorage
import Foundation
import Logging
import Synchronization

/// The pod and container services wired to a `FakeOCIRuntime` and vfs storage in a temporary
/// directory, with a `FakePodHost` for /dev/shm and namespace pins, and a `PodNetworkManager` on
/// `FakeCNIExecutor` and `FakeNetworkNamespaces` (one network, `fakenet`, one plugin, `fakebridge`,
/// answering 10.88.0.N): real service code, no runc, conmon, CNI plugin or mount.
public struct ServiceWorld: Sendable {
    public let tmp: TempDirectory
    public let runtime: FakeOCIRuntime
    public let host: FakePodHost
    public let cni: FakeCNIExecutor
    public let netns: FakeNetworkNamespaces
    public let network: PodNetworkManager
    public let storage: Storage
    public let settings: SandboxService.Settings
    public let config: CrispConfiguration
    public let sandboxes: SandboxService
    public let containers: ContainerService
    public static let image = "example.com/app:1"

    public static func make(runtime: FakeOCIRuntime = FakeOCIRuntime(), host: FakePodHost = FakePodHost(),
                            cni: FakeCNIExecutor = FakeCNIExecutor(), netns: FakeNetworkNamespaces = FakeNetworkNamespaces(),
                            at existing: TempDirectory? = nil) async throws -> ServiceWorld {
        let tmp = try existing ?? TempDirectory("crisp-service")
        var config = CrispConfiguration()
        config.root = tmp.sub("root")
        config.runRoot = tmp.sub("run")
        config.image.pauseImage = ""
        config.runtime.runtimes = ["fake": .init(runtimePath: "/bin/true", runtimeRoot: tmp.sub("run/fake"))]
        config.runtime.defaultRuntime = "fake"
        // The pause program only needs to be an executable file: the fake runtime never runs it.
        let settings = SandboxService.Settings(config: config, pauseBinary: "/bin/true", minimumOOMScoreAdj: -1000)
        let storage = try await Storage.open(StorageOptions(root: tmp.sub("root/storage"), runRoot: tmp.sub("run/storage"), driver: "vfs"),
                                             logger: Logger(label: "storage"))
        try FileManager.default.createDirectory(atPath: tmp.sub("net.d"), withIntermediateDirectories: true)
        try #"{"cniVersion":"1.0.0","name":"fakenet","plugins":[{"type":"fakebridge"}]}"#
            .write(toFile: tmp.sub("net.d/10-fakenet.conflist"), atomically: true, encoding: .utf8)
        if existing == nil { cni.setPlugin("fakebridge", Self.bridge()) }
        let network = PodNetworkManager(options: PodNetworkOptions(networkDir: tmp.sub("net.d"), pluginDirs: ["/fake/cni"],
                                                                   cacheDir: tmp.sub("root/cni/results")),
                                        executor: cni, namespaces: netns, logger: Logger(label: "cni"))
        let sandboxes = SandboxService(settings: settings, runtime: runtime, network: network, namespaces: nil, host: host,
                                       logger: Logger(label: "pods"))
        let containers = ContainerService(settings: settings, config: config, runtime: runtime, storage: storage,
                                          sandboxes: sandboxes, logger: Logger(label: "containers"))
        let world = ServiceWorld(tmp: tmp, runtime: runtime, host: host, cni: cni, netns: netns, network: network, storage: storage, settings: settings, config: config,
                                 sandboxes: sandboxes, containers: containers)
        if try await storage.image(named: image) == nil {
            let imageConfig = #"{"architecture":"amd64","os":"linux","config":{"Cmd":["/app"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
            _ = try await storage.createImage(CreateImageOptions(id: diffDigest(of: Array(imageConfig.utf8)), names: [image],
                                                                 topLayer: nil, config: Array(imageConfig.utf8)))
        }
        return world
    }

    /// Runs `body` on a fresh world and removes the world afterwards, whatever `body` does.
    public static func with(_ body: (ServiceWorld) async throws -> Void) async throws {
        let world = try await make()
        do { try await body(world) } catch {
            await world.close()
            throw error
        }
        await world.close()
    }

    /// The services of a crispd started again on the same directories, with the same runtime.
    public func restarted() async throws -> ServiceWorld {
        await storage.close()
        let again = try await ServiceWorld.make(runtime: runtime, host: host, cni: cni, netns: netns, at: tmp)
        await again.sandboxes.restore()
        await again.containers.restore(exits: runtime.exits)
        return again
    }

    /// A pod on the host's network unless `network`, which puts it on `fakenet`.
    public func podRequest(_ name: String = "web", attempt: UInt32 = 0, sharedPID: Bool = false, network: Bool = false) -> RunSandboxRequest {
        var r = RunSandboxRequest(metadata: .init(name: name, uid: "uid-" + name, namespace: "default", attempt: attempt))
        r.hostNetwork = !network
        r.sharedPID = sharedPID
        r.hostname = name
        r.logDirectory = tmp.sub("logs/" + name)
        return r
    }

    public func containerRequest(pod: String, name: String = "app", attempt: UInt32 = 0) -> CreateContainerRequest {
        var r = CreateContainerRequest(sandboxID: pod, name: name, image: Self.image)
        r.attempt = attempt
        r.logPath = "\(name)/\(attempt).log"
        return r
    }

    /// A plugin that hands out 10.88.0.2, .3, … in call order.
    public static func bridge() -> FakeCNIExecutor.Responder {
        let next = Counter()
        return { (req: CNIExecRequest) throws(CrispError) -> CNIExecOutput in
            guard req.command == .add else { return CNIExecOutput(exitStatus: 0, stdout: []) }
            let ip = "10.88.0.\(next.increment() + 1)"
            let result = #"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"\#(req.cniEnvironment["CNI_NETNS"] ?? "")"}],"ips":[{"address":"\#(ip)/16","interface":0}]}"#
            return CNIExecOutput(exitStatus: 0, stdout: Array(result.utf8))
        }
    }

    /// Record directories (pods and containers) on disk.
    public func recordDirectories() -> (pods: [String], containers: [String]) {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: config.root + "/sandboxes")) ?? [],
                (try? fm.contentsOfDirectory(atPath: config.root + "/containers")) ?? [])
    }

    public func close() async {
        await storage.close()
        tmp.remove()
    }
}

/// A counter closures can share.
final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
}
