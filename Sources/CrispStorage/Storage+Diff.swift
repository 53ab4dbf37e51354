public import CrispCore
import CrispOS

/// What `exportContainerChanges` wrote.
public struct LayerDiff: Sendable, Equatable {
    /// SHA-256 of the uncompressed tar (the diff id of a layer made from it).
    public var diffDigest: CrispCore.Digest
    /// Bytes written.
    public var size: Int64
}

extension Storage {
    /// Writes what the container changed in its root filesystem, relative to its image, to `fd`
    /// as an uncompressed OCI layer tar (PAX): added and changed files with owners, modes,
    /// mtimes, xattrs, devices, symlinks and hard links among them; deletions as `.wh.NAME`,
    /// replaced directories as `DIR/.wh..wh..opq`. The tar is streamed (memory use does not
    /// depend on file sizes); the caller keeps `fd`. Applying the result on the image's top
    /// layer gives the container's view. Stop or pause the container first for a consistent
    /// result. The container cannot be removed while this runs.
    public func exportContainerChanges(_ id: ContainerID, to fd: Int32) async throws -> LayerDiff {
        try checkOpen()
        guard let c = try metadata.container(id) else { throw CrispError.notFound("container \(id) not found") }
        let parent = try metadata.chain(c.layerID).dropFirst().first?.id
        let source = driver.changes(c.layerID, parent: parent)
        exporting[c.layerID, default: 0] += 1
        defer {
            exporting[c.layerID]! -= 1
            if exporting[c.layerID] == 0 { exporting[c.layerID] = nil }
        }
        do {
            return try await runOnThread {
                let writer = try TarStreamWriter(fd: fd)
                try DiffExporter(writer: writer).export(source)
                try writer.finish()
                return LayerDiff(diffDigest: writer.digest, size: writer.size)
            }
        } catch {
            throw storageError(error, "exporting the changes of container \(id)")
        }
    }
}
