public import CrispCore
import CrispImage
import CrispStorage
import Logging
import Synchronization

extension ImageManager {
    /// Removes what `image` names, with CRI semantics: an unknown image is not an error; a tag
    /// that other tags share with its image is only untagged; otherwise (by id, by digest, or
    /// a last tag) the image goes, unless a container uses it (FailedPrecondition).
    public func remove(_ image: String) async throws(CrispError) {
        try await typedThrows("removing image \(image)") { try await removeUntyped(image) }
    }

    func removeUntyped(_ image: String) async throws {
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
        // As CRI-O: an image a container uses is refused, not untagged behind the operator's back.
        // The kubelet's image GC never asks for one; a person who does learns what holds it.
        if let user = try await storage.containers().first(where: { $0.imageID == found.id }) {
            throw CrispError(.failedPrecondition,
                             "image \(image) (\(found.id)) is in use by container \(user.name) (\(user.id)); remove the container first")
        }
        do {
            try await storage.removeImage(found.id)
        } catch let e as CrispError where e.code == .notFound {
            return  // removed concurrently
        }
        logger.info("image removed", metadata: ["image": "\(found.id)"])
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
