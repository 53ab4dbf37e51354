import CrispCore
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
        guard !missing.isEmpty else { return parent }

        let dir = settings.temporaryDirectory + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let limiter = AsyncLimiter(max(1, settings.maxParallelDownloads - 1))
        var prefetches: [LayerID: Task<String, any Error>] = [:]
        for p in missing.dropFirst() where layerTasks.withLock({ $0[p.id] == nil }) {
            let path = dir + "/" + p.descriptor.digest.hex
            prefetches[p.id] = Task {
                try await limiter.run {
                    try await self.download(p.descriptor.digest, size: p.descriptor.size, from: source, credentials: credentials, to: path)
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
                let prefetch = prefetches[p.id]
                let (_, mine) = try await sharedApply(p.id) {
                    if let prefetch {
                        let path = try await prefetch.value
                        defer { try? FileManager.default.removeItem(atPath: path) }
                        return try await self.applyStream(options, blob: "\(p.descriptor.digest)") { input in
                            try await Self.readFile(path, into: input)
                        }
                    }
                    return try await self.applyStream(options, blob: "\(p.descriptor.digest)") { input in
                        try await self.client.blob(p.descriptor.digest, size: p.descriptor.size, on: source, credentials: credentials) { chunk in
                            guard await input.send(chunk) else { throw CancellationError() }
                        }
                    }
                }
                if mine { created.append(p.id) }
            }
        } catch {
            for t in prefetches.values { t.cancel() }
            for t in prefetches.values { _ = await t.result }
            throw error
        }
        return parent
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
                     produce: @escaping @Sendable (AsyncToThreadChannel) async throws -> Void) async throws -> Layer {
        let input = AsyncToThreadChannel()
        let output = ThreadToAsyncChannel()
        LayerDecompressor.start(input: input, output: output, blob: blob)
        let producer = Task {
            do {
                try await produce(input)
                input.finish()
            } catch {
                input.finish(error: error)
            }
        }
        do {
            let layer = try await storage.applyLayer(options, chunks: output.chunks)
            _ = await producer.result
            return layer
        } catch {
            producer.cancel()
            input.cancel()
            output.cancel()
            _ = await producer.result
            // A corrupted download usually breaks the tar before its digest can be checked:
            // name the blob so that the message points at it.
            if let e = error as? CrispError, !e.message.contains(blob) {
                throw CrispError(e.code, "layer \(blob): \(e.message)", cause: e.cause)
            }
            throw error
        }
    }

    /// Downloads a blob (verified) to `path`, retrying a dropped transfer from the start.
    func download(_ digest: CrispCore.Digest, size: Int64?, from source: PullSource, credentials: RegistryCredentials?,
                  to path: String) async throws {
        var attempt = 0
        while true {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw CrispError.internal("cannot create temporary file \(path)")
            }
            do {
                defer { try? handle.close() }
                try await client.blob(digest, size: size, on: source, credentials: credentials) { chunk in
                    try handle.write(contentsOf: chunk)
                }
                return
            } catch let e as CrispError where e.code == .unavailable && attempt < client.options.retries {
                attempt += 1
                logger.info("retrying blob download", metadata: ["blob": "\(digest)", "error": "\(e.message)"])
                try await Task.sleep(for: client.options.retryBackoff * (1 << attempt))
            } catch {
                try? FileManager.default.removeItem(atPath: path)
                throw error
            }
        }
    }

    static func readFile(_ path: String, into input: AsyncToThreadChannel) async throws {
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
