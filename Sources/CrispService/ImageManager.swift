public import CrispCore
public import CrispImage
public import CrispStorage
public import Logging
import Foundation

/// One image as the CRI ImageService shows it.
public struct ImageInfo: Sendable, Equatable {
    public var id: CrispCore.Digest
    public var repoTags: [String]
    public var repoDigests: [String]
    /// Uncompressed size of its layers.
    public var size: UInt64
    public var user: ImageUser
    /// The pause image is pinned: the kubelet's image garbage collection leaves it alone.
    public var pinned: Bool
    /// The image config JSON (for verbose status).
    public var config: [UInt8]
}

/// Filesystem usage for ImageFsInfo.
public struct ImageFilesystemInfo: Sendable, Equatable {
    public var images: FilesystemUsage
    public var containers: FilesystemUsage
    /// Nanoseconds since the epoch when measured.
    public var timestamp: Int64
}

/// Image operations of the CRI ImageService (pull, status, list, remove, filesystem info) over
/// `ImagePuller` and `Storage`. No gRPC here. Safe to call concurrently: storage gives readers
/// an image either whole or not at all, and pulls are single-flighted by the puller.
public final class ImageManager: Sendable {
    let storage: Storage
    let puller: ImagePuller
    let registries: RegistriesHolder
    let pauseImage: String
    let logger: Logger
    /// The signature policy file that did not exist when the puller was set up; nil once it has
    /// been loaded (or when there was no need). Pulls fail while it is set.
    let missingPolicyPath: LockedValue<String?>

    /// `registries` is consulted to expand short names when looking images up (it is the same
    /// configuration the puller uses; `reloadRegistries` updates both). `missingPolicyPath`
    /// names a signature policy file that does not exist: every pull fails with
    /// `.failedPrecondition` until it appears (then it is loaded into the puller).
    public init(storage: Storage, puller: ImagePuller, registries: RegistriesConfiguration, pauseImage: String,
                missingPolicyPath: String? = nil, logger: Logger) {
        self.storage = storage
        self.puller = puller
        self.registries = RegistriesHolder(registries)
        self.pauseImage = pauseImage
        self.missingPolicyPath = LockedValue(missingPolicyPath)
        self.logger = logger
    }

    /// Replaces the registries configuration (SIGHUP).
    public func reloadRegistries(_ conf: RegistriesConfiguration) {
        registries.set(conf)
        puller.updateRegistries(conf)
    }

    /// Pulls `image` (a reference as the kubelet sends it) and returns the image id.
    /// `progress` sees the layers' state as it changes (`crisp.v1.Images/PullWithProgress`).
    public func pull(_ image: String, auth: RegistryAuth? = nil,
                     progress: (@Sendable (PullProgress) -> Void)? = nil) async throws(CrispError) -> CrispCore.Digest {
        let ref = try ImageReference(parsing: image)
        var credentials: RegistryCredentials?
        if let auth, !auth.isEmpty {
            credentials = try RegistryCredentials(username: auth.username, password: auth.password, auth: auth.auth,
                                                  identityToken: auth.identityToken, registryToken: auth.registryToken)
        }
        try loadMissingPolicy()
        logger.info("pulling image", metadata: ["image": "\(ref)", "auth": "\(credentials == nil ? "none" : "request")"])
        do { return try await puller.pull(ref, options: PullOptions(credentials: credentials), progress: progress).id } catch {
            // What went wrong with a registry is the operator's to fix, so it is said.
            if let e = error as? CrispError { throw e }
            throw CrispError(.internal, "pulling image \(ref) failed: \(error)", cause: error)
        }
    }

    /// The store check (`crispctl check`): see `Storage.check`.
    public func checkStore() async throws(CrispError) -> StoreCheckReport {
        try await typedThrows("checking the image store") { try await storage.check() }
    }

    /// Gives the image `source` names (a reference or an id) the name `target` too; the name
    /// moves from whatever image had it. Returns the image's id.
    public func tag(_ source: String, as target: String) async throws(CrispError) -> CrispCore.Digest {
        guard let found = try await find(source) else { throw CrispError.notFound("image \(source) is not present") }
        let ref: ImageReference
        do { ref = try ImageReference(parsing: target) } catch {
            throw CrispError.invalidArgument("\(target) is not an image reference: \(error)")
        }
        guard ref.digest == nil else { throw CrispError.invalidArgument("a tag cannot be a digest reference: \(target)") }
        let name = registries.get().candidates(for: ref).first?.description ?? ref.description
        guard !found.names.contains(name) else { return found.id }
        _ = try await typedThrows("tagging image \(found.id) as \(name)") {
            try await storage.createImage(CreateImageOptions(id: found.id, names: found.names + [name], repoDigests: found.repoDigests,
                                                             topLayer: found.topLayer))
        }
        logger.info("image tagged", metadata: ["image": "\(found.id)", "tag": "\(name)"])
        return found.id
    }

    /// Refuses to pull while the signature policy file is missing; loads it once it exists.
    func loadMissingPolicy() throws(CrispError) {
        guard let path = missingPolicyPath.get() else { return }
        guard FileManager.default.fileExists(atPath: path) else {
            throw CrispError(.failedPrecondition, "signature policy \(path) does not exist, so no image may be pulled: "
                             + "create it (e.g. {\"default\": [{\"type\": \"insecureAcceptAnything\"}]} to accept every image, "
                             + "as Debian's golang-github-containers-common package installs) or point crisp.image.signature_policy at one")
        }
        puller.updatePolicy(try SignaturePolicy.load(path: path))
        missingPolicyPath.set(nil)
        logger.info("signature policy loaded", metadata: ["path": "\(path)"])
    }

    /// The image `image` names (an id, an unambiguous id prefix, `name:tag`, `name@digest`, or
    /// a short name), or nil.
    public func status(_ image: String) async throws(CrispError) -> ImageInfo? {
        try await find(image).map(info)
    }

    /// All images, or those matching `filter` (resolved as in `status`).
    public func list(filter: String?) async throws(CrispError) -> [ImageInfo] {
        if let filter, !filter.isEmpty { return try await status(filter).map { [$0] } ?? [] }
        return try await typedThrows("listing images") { try await storage.images() }.map(info)
    }

    /// Space used by images and by container layers.
    public func filesystemInfo() async throws(CrispError) -> ImageFilesystemInfo {
        let u = try await typedThrows("measuring the image filesystem") { try await storage.usage() }
        return ImageFilesystemInfo(images: u.images, containers: u.containers,
                                   timestamp: Int64(Date().timeIntervalSince1970 * 1_000_000_000))
    }

    func info(_ i: CrispStorage.Image) -> ImageInfo {
        let pinned = !pauseImage.isEmpty && ((try? ImageReference(parsing: pauseImage)).map { p in
            i.names.contains(p.description) || i.repoDigests.contains(p.description) || i.id.description == pauseImage
        } ?? false)
        return ImageInfo(id: i.id, repoTags: i.names, repoDigests: i.repoDigests, size: UInt64(max(0, i.size)),
                         user: ImageUser(configBytes: i.config), pinned: pinned, config: i.config)
    }

    /// Resolves what a CRI request names to a stored image.
    func find(_ image: String) async throws(CrispError) -> CrispStorage.Image? {
        try await typedThrows("looking up image \(image)") { try await findUntyped(image) }
    }

    func findUntyped(_ image: String) async throws -> CrispStorage.Image? {
        let s = image.hasPrefix("sha256:") ? String(image.dropFirst(7)) : image
        let isHex = !s.isEmpty && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        if isHex && s.utf8.count == 64, let id = try? CrispCore.Digest(algorithm: .sha256, hex: s) {
            if let i = try await storage.image(id) { return i }
        }
        if let ref = try? ImageReference(parsing: image) {
            for candidate in registries.get().candidates(for: ref) {
                if let digest = candidate.digest {
                    let wanted = candidate.name + "@" + digest.description
                    if let i = try await storage.images().first(where: { $0.repoDigests.contains(wanted) }) { return i }
                } else if let i = try await storage.image(named: candidate.description) {
                    return i
                }
            }
        }
        if isHex && s.utf8.count >= 3 && s.utf8.count < 64 {
            let matches = try await storage.images().filter { $0.id.hex.hasPrefix(s) }
            if matches.count == 1 { return matches[0] }
            if matches.count > 1 { throw CrispError.invalidArgument("image id prefix \"\(image)\" is ambiguous (\(matches.count) images)") }
        }
        return nil
    }
}

/// The registries configuration, replaceable at run time.
final class RegistriesHolder: Sendable {
    private let value: LockedValue<RegistriesConfiguration>
    init(_ v: RegistriesConfiguration) { value = LockedValue(v) }
    func get() -> RegistriesConfiguration { value.get() }
    func set(_ v: RegistriesConfiguration) { value.set(v) }
}
