public import CrispCore
import CrispOS
import Logging

extension Storage {
    /// Applies a layer read from `fd` (an uncompressed tar; the caller keeps the fd). Returns the
    /// existing layer if one with this id is already complete; concurrent calls for the same id
    /// wait for one apply. On any failure (malformed tar, digest mismatch, I/O) nothing of the
    /// layer remains.
    public func applyLayer(_ options: CreateLayerOptions, fileDescriptor fd: Int32) async throws -> Layer {
        try await applyLayer(options) { target in try LayerApplier.apply(fd: fd, to: target) }
    }

    /// Applies a layer from a stream of uncompressed tar chunks (e.g. a download being
    /// decompressed). At most a few MiB are buffered: the producer is suspended while the
    /// extractor catches up. An error thrown by the sequence fails the apply.
    public func applyLayer<Chunks: AsyncSequence & Sendable>(_ options: CreateLayerOptions, chunks: Chunks) async throws -> Layer
    where Chunks.Element == [UInt8] {
        let channel = ByteChannel()
        let source = ChannelSource(channel)
        let producer = Task {
            do {
                for try await chunk in chunks {
                    if await !source.send(chunk) { return }
                }
                channel.finish()
            } catch {
                channel.finish(error: error)
            }
        }
        defer {
            channel.cancel()
            producer.cancel()
        }
        // Cancelling the caller (e.g. an aborted pull) ends the stream, which fails the apply and
        // rolls the layer back.
        return try await withTaskCancellationHandler {
            try await applyLayer(options) { target in try LayerApplier.apply(source: source, to: target) }
        } onCancel: {
            channel.finish(error: CancellationError())
        }
    }

    func applyLayer(_ o: CreateLayerOptions, write: @escaping @Sendable (ApplyTarget) throws -> ApplyResult) async throws -> Layer {
        try checkOpen()
        if let inFlight = applying[o.id] { return try await inFlight.value }
        if let existing = try metadata.layer(o.id) { return existing }
        let task = Task { try await self.performApply(o, write: write) }
        applying[o.id] = task
        defer { applying[o.id] = nil }
        return try await task.value
    }

    private func performApply(_ o: CreateLayerOptions, write: @escaping @Sendable (ApplyTarget) throws -> ApplyResult) async throws -> Layer {
        let chain: [Layer]
        do {
            chain = try o.parent.map { try metadata.chain($0) } ?? []
            if case .exists(let layer) = try metadata.beginLayer(
                id: o.id, parent: o.parent, kind: "image", diffDigest: o.expectedDiffDigest,
                compressedDigest: o.compressedDigest, compressedSize: o.compressedSize) {
                return layer
            }
        } catch {
            throw storageError(error, "registering layer \(o.id)")
        }
        let driver = self.driver
        do {
            var target = try driver.createLayer(o.id, parentChain: chain.map(\.id))
            target.expectedDigest = o.expectedDiffDigest
            target.syncToDisk = options.sync == .filesystem
            let finalTarget = target
            let result = try await runOnThread {
                let result = try write(finalTarget)
                // The layer becomes visible with the next transaction. With `sync = filesystem`
                // its content is on disk first, so a power loss cannot leave a complete layer with
                // empty files; without it (the default, as in containers/storage) a process crash
                // is still safe, the page cache survives it.
                if finalTarget.syncToDisk { try syncFilesystem(of: finalTarget.root) }
                return result
            }
            let parentDisk = driver.copiesParent ? chain.first.map { ($0.diskBytes, $0.diskInodes) } ?? (0, 0) : (0, 0)
            let layer = try metadata.completeLayer(id: o.id, uncompressedSize: result.streamSize,
                                                   diskBytes: result.contentBytes + parentDisk.0,
                                                   diskInodes: result.inodes + parentDisk.1,
                                                   unsyncedBoot: options.sync == .none ? bootID : nil)
            logger.debug("layer applied", metadata: ["layer": "\(o.id)", "bytes": "\(result.streamSize)"])
            return layer
        } catch {
            // Roll back: the content first, then the row (a crash in between is cleaned at start-up).
            try? driver.removeLayer(o.id)
            try? metadata.deleteLayerRows([o.id])
            throw storageError(error, "applying layer \(o.id)")
        }
    }

    /// A complete layer, or nil.
    public func layer(_ id: LayerID) throws -> Layer? {
        try checkOpen()
        return try metadata.layer(id)
    }

    /// All complete layers (image and container layers).
    public func layers() throws -> [Layer] {
        try checkOpen()
        return try metadata.layers()
    }
}

extension Storage {
    /// Removes an image layer that nothing uses (no child layer, image or container), e.g. one
    /// left by a pull that failed before its image was recorded.
    public func removeLayer(_ id: LayerID) async throws {
        try checkOpen()
        do {
            try metadata.beginRemoveLayer(id)
            let driver = self.driver
            try await runOnThread { try driver.removeLayer(id) }
            try metadata.deleteLayerRows([id])
        } catch {
            throw storageError(error, "removing layer \(id)")
        }
    }
}
