import CrispCore
import CrispOS
import CrispOCI
import CrispStorage
import Foundation
import Logging
import Synchronization

extension ImagePuller {
    struct PlannedLayer: Sendable {
        var descriptor: Descriptor
        var diffID: CrispCore.Digest
        var id: LayerID
        var parent: LayerID?
    }

    /// Applies the layers of an image manifest in order and returns the top layer id. Layers
    /// already stored are skipped. The first missing layer streams from the registry straight
    /// into storage; the following ones download concurrently (up to `maxParallelDownloads` in
    /// all) into temporary files, each applied when its turn comes.
    func applyLayers(_ layers: [Descriptor], diffIDs: [CrispCore.Digest], from source: PullSource,
                     credentials: RegistryCredentials?, settings: PullerSettings, created: inout [LayerID]) async throws -> LayerID? {
        var plan: [PlannedLayer] = []
        var parent: LayerID?
        for (d, diff) in zip(layers, diffIDs) {
            let id = LayerID.chainID(parent: parent, diffDigest: diff)
            plan.append(PlannedLayer(descriptor: d, diffID: diff, id: id, parent: parent))
            parent = id
        }
        var missing: [PlannedLayer] = []
        for p in plan where try await storage.layer(p.id) == nil { missing.append(p) }
        let progress = PullProgressHub.current
        progress?.planned(plan.map { ($0.descriptor.digest, $0.descriptor.size) },
                          stored: Set(plan.map(\.descriptor.digest)).subtracting(missing.map(\.descriptor.digest)))
        guard !missing.isEmpty else { return parent }

        let dir = settings.temporaryDirectory + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let limiter = AsyncLimiter(max(1, settings.maxParallelDownloads - 1))
        var prefetches: [LayerID: Task<String, any Error>] = [:]
        for p in missing.dropFirst() where layerTasks.withLock({ $0[p.id] == nil }) {
            let path = dir + "/" + p.descriptor.digest.hex
            prefetches[p.id] = Task {
                try await limiter.run {
                    try await self.download(p.descriptor, from: source, credentials: credentials,
                                            allowURLs: settings.allowForeignLayerURLs, to: path)
                }
                return path
            }
        }
        defer {
            for t in prefetches.values { t.cancel() }
            try? FileManager.default.removeItem(atPath: dir)
        }
        do {
            for p in missing {
                let options = CreateLayerOptions(id: p.id, parent: p.parent, expectedDiffDigest: p.diffID,
                                                 compressedDigest: p.descriptor.digest, compressedSize: p.descriptor.size)
                var prefetch = prefetches[p.id]
                var attempt = 0
                while true {
                    attempt += 1
                    do {
                        try await applyOne(p, options: options, prefetch: prefetch, source: source, credentials: credentials,
                                           settings: settings, progress: progress, created: &created)
                        break
                    } catch let e as CrispError where e.code == .alreadyExists && attempt < 20 {
                        // The layer's row is there but incomplete and no pull of ours is writing it:
                        // a RemoveImage is deleting the old copy (found by the racing-image stress
                        // scenario). Its end is not an event storage publishes, so wait a little and
                        // try again, from the registry (the prefetched file went with the attempt).
                        if try await storage.layer(p.id) != nil { break }
                        prefetch = nil
                        try await Task.sleep(for: .milliseconds(20 * attempt))
                    }
                }
                progress?.finished(p.descriptor.digest)
            }
        } catch {
            for t in prefetches.values { t.cancel() }
            for t in prefetches.values { _ = await t.result }
            throw error
        }
        return parent
    }

    private func applyOne(_ p: PlannedLayer, options: CreateLayerOptions, prefetch: Task<String, any Error>?,
                          source: PullSource, credentials: RegistryCredentials?, settings: PullerSettings,
                          progress: PullProgressHub?, created: inout [LayerID]) async throws {
        let (_, mine) = try await sharedApply(p.id) {
            if let prefetch {
                let path = try await prefetch.value
                defer { try? FileManager.default.removeItem(atPath: path) }
                return try await self.applyStream(options, blob: "\(p.descriptor.digest)") { input in
                    try await Self.readFile(path, into: input)
                }
            }
            return try await self.restartingIfRangeIgnored(p.descriptor.digest) {
                try await self.applyStream(options, blob: "\(p.descriptor.digest)") { input in
                    try await self.layerBlob(p.descriptor, from: source, credentials: credentials,
                                             allowURLs: settings.allowForeignLayerURLs) { chunk in
                        progress?.received(p.descriptor.digest, bytes: chunk.count)
                        guard await input.send(chunk) else { throw CancellationError() }
                    }
                }
            }
        }
        if mine { created.append(p.id) }
    }

    /// Runs `body` to create layer `id` unless another pull is already creating it, in which
    /// case its result is shared. Returns whether this call created it.
    func sharedApply(_ id: LayerID, _ body: @escaping @Sendable () async throws -> Layer) async throws -> (Layer, Bool) {
        let (task, mine) = layerTasks.withLock { t -> (Task<Layer, any Error>, Bool) in
            if let existing = t[id] { return (existing, false) }
            let task = Task { try await body() }
            t[id] = task
            return (task, true)
        }
        defer { if mine { layerTasks.withLock { _ = $0.removeValue(forKey: id) } } }
        let layer = try await withTaskCancellationHandler { try await task.value } onCancel: { if mine { task.cancel() } }
        return (layer, mine)
    }

    /// Decompresses what `produce` sends and applies it as a layer. Nothing of the layer stays
    /// when the producer (download, digest check), the decompression or the apply fails.
    func applyStream(_ options: CreateLayerOptions, blob: String,
                     produce: @escaping @Sendable (ByteChannel) async throws -> Void) async throws -> Layer {
        // The blob's digest is checked by the download itself; the channel need not hash it.
        let input = ByteChannel()
        let output = ByteChannel(capacity: 2 << 20)
        LayerDecompressor.start(input: input, output: output, blob: blob)
        let producer = Task { () -> CrispError? in
            do {
                try await produce(input)
                input.finish()
                return nil
            } catch {
                input.finish(error: error)
                return error as? CrispError
            }
        }
        do {
            let layer = try await storage.applyLayer(options, chunks: output.chunks)
            _ = await producer.value
            return layer
        } catch {
            producer.cancel()
            input.cancel()
            output.cancel()
            // A failed download (stall, dropped connection, ignored Range, wrong digest) is the
            // cause of whatever the extractor then reported: report it, with its code and cause.
            // (A producer stopped because the apply failed ends with a CancellationError instead.)
            let error = await producer.value ?? error
            // A corrupted download usually breaks the tar before its digest can be checked:
            // name the blob so that the message points at it.
            if let e = error as? CrispError, !e.message.contains(blob) {
                throw CrispError(e.code, "layer \(blob): \(e.message)", cause: e.cause)
            }
            throw error
        }
    }

    /// Downloads a layer blob (verified) to `path`; see `layerBlob`.
    func download(_ d: Descriptor, from source: PullSource, credentials: RegistryCredentials?, allowURLs: Bool,
                  to path: String) async throws {
        try await download(d.digest, size: d.size, from: source, credentials: credentials, to: path) { sink in
            try await self.layerBlob(d, from: source, credentials: credentials, allowURLs: allowURLs, sink: sink)
        }
    }

    /// Downloads a blob (verified) to `path`. A connection dropped mid-blob is resumed by the
    /// client; a server that ignores the resume's Range makes the file start over. Nothing
    /// stays at `path` on failure.
    func download(_ digest: CrispCore.Digest, size: Int64?, from source: PullSource, credentials: RegistryCredentials?,
                  to path: String,
                  fetch: ((([UInt8]) async throws -> Void) async throws -> Void)? = nil) async throws {
        let fetch = fetch ?? { sink in try await self.client.blob(digest, size: size, on: source, credentials: credentials, sink: sink) }
        do {
            try await restartingIfRangeIgnored(digest) {
                guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                    throw CrispError.internal("cannot create temporary file \(path)")
                }
                defer { try? handle.close() }
                let progress = PullProgressHub.current
                try await fetch { chunk in
                    try handle.write(contentsOf: chunk)
                    progress?.received(digest, bytes: chunk.count)
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
    }

    /// Runs `body` again (up to the client's retry count) when it failed because a server
    /// ignored a resume's Range request: `body` must start the blob over from nothing.
    func restartingIfRangeIgnored<T: Sendable>(_ blob: CrispCore.Digest, _ body: () async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch let e as CrispError where e.cause is RangeNotHonoured && attempt < client.options.retries {
                attempt += 1
                PullProgressHub.current?.restarted(blob)
                logger.info("restarting blob download from its start", metadata: ["blob": "\(blob)", "reason": "\(e.message)"])
            }
        }
    }

    /// Streams a layer blob to `sink`. A foreign / non-distributable layer with `urls` comes
    /// from those URLs when `allowURLs`; otherwise (and for every other layer) from the
    /// registry, and a failure then says that the layer is foreign and how to allow its URLs.
    func layerBlob(_ d: Descriptor, from source: PullSource, credentials: RegistryCredentials?, allowURLs: Bool,
                   sink: ([UInt8]) async throws -> Void) async throws {
        let urls = d.urls ?? []
        let foreign = MediaType.isNonDistributable(d.mediaType) && !urls.isEmpty
        if foreign && allowURLs {
            logger.debug("fetching foreign layer from its URLs", metadata: ["blob": "\(d.digest)"])
            try await client.blob(d.digest, size: d.size, urls: urls, sink: sink)
            return
        }
        do {
            try await client.blob(d.digest, size: d.size, on: source, credentials: credentials, sink: sink)
        } catch let e as CrispError where foreign {
            let shown = urls.map(RegistryClient.redacted).joined(separator: ", ")
            throw CrispError(e.code, "layer \(d.digest) is a foreign (non-distributable) layer and fetching it from the registry failed: "
                             + "\(e.message); it lists URLs (\(shown)) that crisp uses only when "
                             + "crisp.image.allow_foreign_layer_urls = true", cause: e.cause)
        }
    }

    static func readFile(_ path: String, into input: ByteChannel) async throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CrispError.internal("cannot open \(path)") }
        defer { try? handle.close() }
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            guard await input.send([UInt8](data)) else { throw CancellationError() }
        }
    }
}

/// Lets at most `limit` bodies run at once; the others wait in order.
actor AsyncLimiter {
    private let limit: Int
    private var running = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ limit: Int) { self.limit = limit }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if running >= limit {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            running += 1
        }
        defer {
            if waiters.isEmpty { running -= 1 } else { waiters.removeFirst().resume() }
        }
        try Task.checkCancellation()
        return try await body()
    }
}
