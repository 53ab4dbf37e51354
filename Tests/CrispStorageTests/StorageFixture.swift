import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import Glibc
import Logging
import Testing
@testable import CrispStorage

/// A storage root in a fresh temp dir; `close()` closes the store, unmounts and removes all.
struct StorageFixture {
    let tmp: TempDirectory
    let storage: Storage
    let driver: String

    static func make(_ driver: String, root: String? = nil) async throws -> StorageFixture {
        let tmp = try TempDirectory("crisp-storage")
        do {
            let s = try await Storage.open(StorageOptions(root: root ?? tmp.sub("root"), runRoot: tmp.sub("run"), driver: driver),
                                           logger: Logger(label: "test"))
            return StorageFixture(tmp: tmp, storage: s, driver: driver)
        } catch {
            tmp.remove()
            throw error
        }
    }

    func close() async {
        await storage.close()
        tmp.removeAll()
    }

    /// Applies a layer built from `entries` on `parent`, streamed in 64 KiB chunks.
    @discardableResult
    func layer(_ entries: [TarEntry], parent: Layer? = nil) async throws -> Layer {
        let tar = try TarBuilder.build(entries)
        let diff = diffDigest(of: tar)
        let id = LayerID.chainID(parent: parent?.id, diffDigest: diff)
        return try await storage.applyLayer(CreateLayerOptions(id: id, parent: parent?.id, expectedDiffDigest: diff),
                                            chunks: ChunkSequence(bytes: tar, size: 65536))
    }

    func image(_ name: String, top: Layer?) async throws -> Image {
        let config = Array("{\"name\":\"\(name)\"}".utf8)
        return try await storage.createImage(CreateImageOptions(id: diffDigest(of: config), names: [name], topLayer: top?.id, config: config))
    }
}

/// Tar bytes as an async sequence of fixed-size chunks.
struct ChunkSequence: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let bytes: [UInt8]
    let size: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let bytes: [UInt8]
        let size: Int
        var offset = 0
        mutating func next() async throws -> [UInt8]? {
            guard offset < bytes.count else { return nil }
            let end = Swift.min(bytes.count, offset + size)
            defer { offset = end }
            return Array(bytes[offset..<end])
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes, size: size) }
}

/// Drivers usable on /var/tmp here (btrfs needs its own filesystem: see BtrfsDriverTests).
let copyAndOverlayDrivers = ["overlay", "vfs"]

/// Runs `body` with a fresh store and always closes it and removes its directories afterwards
/// (an async `defer` is not available).
func withStorage(_ driver: String, root: String? = nil, _ body: (StorageFixture) async throws -> Void) async throws {
    let f = try await StorageFixture.make(driver, root: root)
    do {
        try await body(f)
    } catch {
        await f.close()
        throw error
    }
    await f.close()
}
