import CrispCore
@testable import CrispImage
import CrispOCI
import CrispStorage
import CrispTestSupport
import Foundation
import Logging
import RegistryTestSupport
import Testing

/// A vfs storage in a temp dir, a real registry, a pusher and a puller. `close()` stops and
/// removes everything; tests call it from `defer` through `withPullFixture`.
final class PullFixture: Sendable {
    let tmp: TempDirectory
    let storage: Storage
    let registry: TestRegistry
    let pusher: RegistryPusher
    let client: RegistryClient
    let puller: ImagePuller

    static func registriesInsecure(_ hosts: [String]) -> RegistriesConfiguration {
        RegistriesConfiguration(registries: hosts.map { .init(prefix: $0, insecure: true) })
    }

    init(registry options: TestRegistry.Options = .init(), configure: (String) -> RegistriesConfiguration = { registriesInsecure([$0]) },
         policy: SignaturePolicy? = nil, authFile: String = "", pusherCA: String? = nil, pusherToken: String? = nil) async throws {
        tmp = try TempDirectory("crisp-pull")
        do {
            storage = try await Storage.open(StorageOptions(root: tmp.sub("root"), runRoot: tmp.sub("run"), driver: "vfs"),
                                             logger: Logger(label: "test"))
        } catch {
            tmp.remove()
            throw error
        }
        do { registry = try await TestRegistry(options) } catch {
            await storage.close()
            tmp.remove()
            throw error
        }
        pusher = RegistryPusher(host: registry.host, basicAuth: options.basicAuth, trustedCA: pusherCA, bearerToken: pusherToken)
        var o = RegistryClientOptions()
        o.retries = 1
        o.retryBackoff = .milliseconds(20)
        o.certsDirectory = tmp.sub("certs.d")
        client = RegistryClient(options: o, logger: Logger(label: "test"))
        puller = ImagePuller(storage: storage, client: client,
                             settings: PullerSettings(registries: configure(registry.host), policy: policy, authFile: authFile,
                                                      maxParallelDownloads: 3, temporaryDirectory: tmp.sub("downloads")),
                             logger: Logger(label: "test"))
    }

    func close() async {
        try? await client.shutdown()
        try? await pusher.shutdown()
        registry.stop()
        await storage.close()
        tmp.remove()
    }

    /// Mounts a container made from the image and runs `body` on its root path.
    func withRootfs<T>(_ image: CrispStorage.Image, _ body: (String) throws -> T) async throws -> T {
        let c = try await storage.createContainer(CreateContainerOptions(name: "c-\(UUID().uuidString)", imageID: image.id))
        let root = try await storage.mountContainer(c.id)
        defer { Task { [storage] in _ = try? await storage.unmountContainer(c.id); try? await storage.removeContainer(c.id) } }
        return try body(root)
    }

    /// Files left in the download dir (must be none after a pull).
    func leftoverDownloads() -> [String] {
        guard let e = FileManager.default.enumerator(atPath: tmp.sub("downloads")) else { return [] }
        return e.compactMap { $0 as? String }.filter { !$0.isEmpty && !(FileManager.default.fileExists(atPath: tmp.sub("downloads/") + $0, isDirectory: nil) && isDir(tmp.sub("downloads/") + $0)) }
    }

    func isDir(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }
}

func withPullFixture(registry: TestRegistry.Options = .init(), configure: ((String) -> RegistriesConfiguration)? = nil,
                     policy: SignaturePolicy? = nil, authFile: String = "", pusherCA: String? = nil, pusherToken: String? = nil,
                     _ body: (PullFixture) async throws -> Void) async throws {
    let f = try await PullFixture(registry: registry, configure: configure ?? { PullFixture.registriesInsecure([$0]) },
                                  policy: policy, authFile: authFile, pusherCA: pusherCA, pusherToken: pusherToken)
    do {
        try await body(f)
    } catch {
        await f.close()
        throw error
    }
    await f.close()
}

func fileContent(_ path: String) -> String? {
    FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
}

func exists(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0
}
