public import CrispCore
public import CrispOCI
public import CrispStorage
public import Logging
import Foundation
import Synchronization

/// What a pull needs besides the reference.
public struct PullOptions: Sendable {
    /// Credentials from the request; when nil the auth file is consulted.
    public var credentials: RegistryCredentials?
    public var platform: Platform

    public init(credentials: RegistryCredentials? = nil, platform: Platform = .current) {
        self.credentials = credentials
        self.platform = platform
    }
}

/// Settings of the puller that come from the configuration.
public struct PullerSettings: Sendable {
    public var registries: RegistriesConfiguration
    /// nil: every image is accepted (no policy file).
    public var policy: SignaturePolicy?
    /// containers-auth.json file consulted when a pull carries no credentials ("" for none).
    public var authFile: String
    /// Layer downloads in flight per pull (the streamed one included), at least 1.
    public var maxParallelDownloads: Int
    /// Where prefetched layer blobs wait for their turn to be applied.
    public var temporaryDirectory: String
    /// Whether foreign / non-distributable layers that carry `urls` are fetched from those URLs
    /// (otherwise from the registry, like any blob).
    public var allowForeignLayerURLs: Bool

    public init(registries: RegistriesConfiguration = .init(), policy: SignaturePolicy? = nil, authFile: String = "",
                maxParallelDownloads: Int = 3, temporaryDirectory: String, allowForeignLayerURLs: Bool = false) {
        self.registries = registries
        self.policy = policy
        self.authFile = authFile
        self.maxParallelDownloads = max(1, maxParallelDownloads)
        self.temporaryDirectory = temporaryDirectory
        self.allowForeignLayerURLs = allowForeignLayerURLs
    }
}

/// Pulls images from registries into `Storage`: reference → registries.conf sources → manifest
/// (index → platform) → config → layers (download, verify, decompress and apply as one stream;
/// later layers prefetched to temporary files in parallel) → image record.
///
/// Safe to call concurrently. Two pulls of the same reference share one pull; two pulls that
/// need the same layer share its download and apply. A failed pull removes the layers it
/// created and that nothing else uses, and leaves no temporary file.
public final class ImagePuller: Sendable {
    let storage: Storage
    public let client: RegistryClient
    let logger: Logger
    let settings: Mutex<PullerSettings>
    let pulls = Mutex<[String: (task: Task<Image, any Error>, progress: PullProgressHub)]>([:])
    let layerTasks = Mutex<[LayerID: Task<Layer, any Error>]>([:])

    public init(storage: Storage, client: RegistryClient, settings: PullerSettings, logger: Logger) {
        self.storage = storage
        self.client = client
        self.logger = logger
        self.settings = Mutex(settings)
        try? FileManager.default.removeItem(atPath: settings.temporaryDirectory)
    }

    /// Replaces the signature policy; pulls in flight keep the old one.
    public func updatePolicy(_ policy: SignaturePolicy?) {
        settings.withLock { $0.policy = policy }
    }

    /// Replaces the registries configuration (SIGHUP reload); pulls in flight keep the old one.
    public func updateRegistries(_ registries: RegistriesConfiguration) {
        settings.withLock { $0.registries = registries }
    }

    /// Pulls `reference` and returns the stored image (id = config digest). Names recorded: the
    /// reference pulled (for a tag) and `name@manifestDigest`.
    /// `progress` is called with the state of the layers as it changes (see `PullProgressHub`).
    public func pull(_ reference: ImageReference, options: PullOptions = PullOptions(),
                     progress: (@Sendable (PullProgress) -> Void)? = nil) async throws -> Image {
        let key = reference.description + "|" + options.platform.description + "|" + (options.credentials?.description ?? "")
        let (task, hub, owner) = pulls.withLock { p -> (Task<Image, any Error>, PullProgressHub, Bool) in
            if let t = p[key] { return (t.task, t.progress, false) }
            let hub = PullProgressHub()
            let t = Task { try await PullProgressHub.$current.withValue(hub) { try await self.performPull(reference, options: options) } }
            p[key] = (t, hub)
            return (t, hub, true)
        }
        let token = progress.map { hub.watch($0) }
        defer {
            if let token { hub.unwatch(token) }
            if owner { pulls.withLock { _ = $0.removeValue(forKey: key) } }
        }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            if owner { task.cancel() }
        }
    }

    func performPull(_ reference: ImageReference, options: PullOptions) async throws -> Image {
        let s = settings.withLock { $0 }
        let candidates = s.registries.candidates(for: reference)
        var failures: [(String, CrispError)] = []
        for name in candidates {
            try s.policy?.check(name)
            let sources: [PullSource]
            do { sources = try s.registries.sources(for: name) } catch {
                if candidates.count == 1 { throw error }
                failures.append((name.description, error))
                continue
            }
            for source in sources {
                try Task.checkCancellation()
                do {
                    let credentials = try options.credentials ?? credentialsFromFile(s.authFile, for: source.reference, name: name)
                    let image = try await pull(name: name, from: source, credentials: credentials, platform: options.platform,
                                               settings: s)
                    logger.info("image pulled", metadata: ["image": "\(name)", "id": "\(image.id)", "source": "\(source)"])
                    return image
                } catch let e as CrispError {
                    logger.info("pull attempt failed", metadata: ["image": "\(name)", "source": "\(source)", "error": "\(e.message)"])
                    failures.append((source.description, e))
                }
            }
        }
        guard let last = failures.last else { throw CrispError.notFound("no registry to pull \(reference) from") }
        if failures.count == 1 { throw last.1 }
        let summary = failures.map { "\($0.0): \($0.1.message)" }.joined(separator: "; ")
        throw CrispError(last.1.code, "pulling \(reference) failed from every source: \(summary)")
    }

    func credentialsFromFile(_ path: String, for source: ImageReference, name: ImageReference) throws(CrispError) -> RegistryCredentials? {
        guard !path.isEmpty else { return nil }
        let file = try AuthFile.load(path: path)
        return file.credentials(for: source) ?? file.credentials(for: name)
    }

    /// One attempt from one source. Rolls back the layers it created on failure.
    func pull(name: ImageReference, from source: PullSource, credentials: RegistryCredentials?, platform: Platform,
              settings: PullerSettings) async throws -> Image {
        let resolved = try await resolve(name: name, from: source, credentials: credentials, platform: platform)
        var created: [LayerID] = []
        do {
            let top: LayerID?
            let config: [UInt8]
            switch resolved.kind {
            case .image(let manifest, let configBytes, let configuration):
                top = try await applyLayers(manifest.layers, diffIDs: configuration.rootfs.diffIDs, from: source,
                                            credentials: credentials, settings: settings, created: &created)
                config = configBytes
            case .schema1(let manifest):
                (top, config) = try await applySchema1(manifest, from: source, credentials: credentials, settings: settings,
                                                       created: &created)
            }
            let id = CrispCore.Digest(sha256Bytes: sha256(config))
            let configuration = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(config))
            let names = name.tag != nil ? [name.description] : []
            let repoDigest = name.name + "@" + resolved.manifestDigest.description
            var repoDigests = (try await storage.image(id))?.repoDigests ?? []
            if !repoDigests.contains(repoDigest) { repoDigests.append(repoDigest) }
            return try await storage.createImage(CreateImageOptions(
                id: id, names: names, repoDigests: repoDigests, topLayer: top, manifest: resolved.manifestBytes,
                config: config, created: configuration?.createdDate ?? Date()))
        } catch {
            await rollback(created)
            throw error
        }
    }

    /// Removes layers a failed pull created, newest first; a layer that another image or pull
    /// now uses stays.
    func rollback(_ layers: [LayerID]) async {
        for id in layers.reversed() {
            do { try await storage.removeLayer(id) } catch {
                logger.debug("rollback kept layer", metadata: ["layer": "\(id)", "reason": "\(error)"])
            }
        }
    }
}
