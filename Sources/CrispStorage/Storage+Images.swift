public import CrispCore
import CrispOS
import Logging

extension Storage {
    /// Records an image on its (complete) top layer. Names move from any image that held them.
    /// Creating an image that exists with the same top layer updates its names and repo digests.
    public func createImage(_ options: CreateImageOptions) throws -> Image {
        try checkOpen()
        do { return try metadata.insertImage(options) } catch { throw storageError(error, "creating image \(options.id)") }
    }

    public func image(_ id: CrispCore.Digest) throws -> Image? {
        try checkOpen()
        return try metadata.image(id)
    }

    public func image(named name: String) throws -> Image? {
        try checkOpen()
        return try metadata.image(named: name)
    }

    public func images() throws -> [Image] {
        try checkOpen()
        return try metadata.images()
    }

    /// Removes a name from whatever image holds it; returns whether one did.
    public func untagImage(_ name: String) throws -> Bool {
        try checkOpen()
        return try metadata.untag(name)
    }

    /// Removes the image and every layer of it that nothing else uses (another image, a child
    /// layer, a container). Fails with `failedPrecondition` while a container uses the image.
    /// Returns the removed layers. Readers see the image either whole or not at all.
    @discardableResult
    public func removeImage(_ id: CrispCore.Digest) async throws -> [LayerID] {
        try checkOpen()
        let doomed: [LayerID]
        do {
            doomed = try metadata.removeImage(id)
            if !doomed.isEmpty { try metadata.makeCommitsDurable() }
        } catch { throw storageError(error, "removing image \(id)") }
        let driver = self.driver
        do {
            try await runOnThread { for layer in doomed { try driver.removeLayer(layer) } }
            try metadata.deleteLayerRows(doomed)
        } catch {
            // The rows stay incomplete (invisible); the next start-up finishes the removal.
            throw storageError(error, "removing the layers of image \(id)")
        }
        logger.debug("image removed", metadata: ["image": "\(id)", "layers": "\(doomed.count)"])
        return doomed
    }
}
