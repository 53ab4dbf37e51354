public import CrispCore
import CrispImage
import CrispStorage
import Logging
import Synchronization

extension ImageManager {
    /// Removes what `image` names, with CRI semantics: an unknown image is not an error; a tag
    /// that other tags share with its image is only untagged; otherwise (by id, by digest, or
    /// a last tag) the image goes — but while a container uses it, it is only untagged and its
    /// layers stay until the container is removed.
    public func remove(_ image: String) async throws {
        guard let found = try await find(image) else {
            logger.debug("remove of an unknown image", metadata: ["image": "\(image)"])
            return
        }
        if let ref = try? ImageReference(parsing: image), ref.digest == nil, !isID(image, found) {
            let tag = registries.get().candidates(for: ref).map(\.description).first { found.names.contains($0) }
            if let tag, found.names.count > 1 {
                _ = try await storage.untagImage(tag)
                logger.info("image untagged", metadata: ["image": "\(found.id)", "tag": "\(tag)"])
                return
            }
        }
        let inUse = try await storage.containers().contains { $0.imageID == found.id }
        if inUse {
            for name in found.names { _ = try await storage.untagImage(name) }
            // Without names and repo digests the image is marked for collection: the last
            // container's removal (`collectUntaggedImages`) takes it and its layers.
            _ = try await storage.createImage(CreateImageOptions(id: found.id, names: [], repoDigests: [], topLayer: found.topLayer))
            logger.info("image in use by a container: untagged, layers kept until the last container using it is removed",
                        metadata: ["image": "\(found.id)"])
            return
        }
        do {
            try await storage.removeImage(found.id)
        } catch let e as CrispError where e.code == .notFound {
            return  // removed concurrently
        }
        logger.info("image removed", metadata: ["image": "\(found.id)"])
    }

    /// Removes every image that has neither tags nor repo digests — what `remove` leaves of an
    /// image a container was using — once no container uses it; with `only`, just that image
    /// (if it is such an image). Call after removing a container, and once at start-up (a crash
    /// may have come between a container's removal and this call). Failures are logged, not
    /// thrown: the next call tries again. Returns the images removed.
    ///
    /// Safe to call concurrently with pulls and removals: storage refuses to remove an image a
    /// container uses, and an image that a pull tags again in the meantime is kept.
    @discardableResult
    public func collectUntaggedImages(only: CrispCore.Digest? = nil) async -> [CrispCore.Digest] {
        var removed: [CrispCore.Digest] = []
        do {
            let candidates: [CrispStorage.Image]
            if let only {
                candidates = try await storage.image(only).map { [$0] } ?? []
            } else {
                candidates = try await storage.images()
            }
            let untagged = candidates.filter { $0.names.isEmpty && $0.repoDigests.isEmpty }
            guard !untagged.isEmpty else { return [] }
            let used = Set(try await storage.containers().map(\.imageID))
            for image in untagged where !used.contains(image.id) {
                // Read again just before removing: a pull may have tagged it since.
                guard let now = try await storage.image(image.id), now.names.isEmpty, now.repoDigests.isEmpty else { continue }
                do {
                    try await storage.removeImage(image.id)
                    removed.append(image.id)
                    logger.info("untagged image removed after its last container", metadata: ["image": "\(image.id)"])
                } catch let e as CrispError where e.code == .notFound || e.code == .failedPrecondition {
                    continue  // removed concurrently, or a container was created from it meanwhile
                }
            }
        } catch {
            logger.warning("collecting untagged images failed; retried on the next container removal",
                           metadata: ["error": "\(error)"])
        }
        return removed
    }

    func isID(_ s: String, _ image: CrispStorage.Image) -> Bool {
        let hex = s.hasPrefix("sha256:") ? String(s.dropFirst(7)) : s
        return image.id.hex.hasPrefix(hex) && !hex.isEmpty && hex.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}

/// A value behind a mutex, for configuration that a reload replaces.
final class LockedValue<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func get() -> T { m.withLock { $0 } }
    func set(_ v: T) { m.withLock { $0 = v } }
}
