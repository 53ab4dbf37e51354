public import CrispCore
import CrispOS
import CArchive
import CCrispShim
import Glibc

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
        try await exportChanges(id, what: "exporting the changes of container \(id)") { source in
            let writer = try TarStreamWriter(fd: fd)
            try DiffExporter(writer: writer).export(source)
            try writer.finish()
            return LayerDiff(diffDigest: writer.digest, size: writer.size)
        }
    }

    /// Runs `write` on the container's changes against its image, on a thread of its own; the
    /// container's layer cannot be removed meanwhile.
    func exportChanges<T: Sendable>(_ id: ContainerID, what: String,
                                    _ write: @escaping @Sendable (ChangesSource) throws -> T) async throws -> T {
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
            return try await runOnThread { try write(source) }
        } catch {
            throw storageError(error, what)
        }
    }
}

/// What `exportContainerChangesForCheckpoint` wrote.
public struct CheckpointDiff: Sendable, Equatable {
    /// Bytes of the tar.
    public var size: Int64
    /// Removed paths, absolute in the container (`/etc/motd`); an opaque directory is listed
    /// too, since its old contents are gone (restore removes these before it untars).
    public var deleted: [String]
}

extension Storage {
    /// The container's changes as CRI-O's checkpoint archives carry them (`rootfs-diff.tar` and
    /// `deleted.files`): added and changed entries in a plain tar, deletions as a list instead of
    /// whiteout files. Paths equal to or below `excluding` (absolute, e.g. bind-mount targets,
    /// `/proc`) are left out.
    public func exportContainerChangesForCheckpoint(_ id: ContainerID, to fd: Int32, excluding: [String]) async throws -> CheckpointDiff {
        let excluded = excluding.map { RawPath(String($0.drop { $0 == "/" })) }.filter { !$0.isEmpty }
        return try await exportChanges(id, what: "exporting the changes of container \(id) for a checkpoint") { source in
            let writer = try TarStreamWriter(fd: fd)
            let exporter = DiffExporter(writer: writer, collectDeletions: true, excluding: excluded)
            try exporter.export(source)
            try writer.finish()
            return CheckpointDiff(size: writer.size, deleted: (exporter.deletions ?? []).map { "/" + $0.description })
        }
    }
}

/// A directory tree to and from a tar, for checkpoint archives: written with the same PAX writer
/// as layer diffs, read back with the layer applier (nothing is created outside the target, and
/// links cannot lead out of it).
public enum TreeArchive {
    /// Writes `directory`'s entries (not the directory itself) to `fd`, which the caller keeps.
    public static func write(directory: String, to fd: Int32) throws {
        let writer = try TarStreamWriter(fd: fd)
        try DiffExporter(writer: writer).export(.compare(layer: directory, parent: nil))
        try writer.finish()
    }

    /// Extracts the tar read from `fd` into `directory`, which must exist. A name starting with
    /// `.wh.` is taken as a deletion, as in a layer; checkpoint archives have none.
    public static func extract(fd: Int32, into directory: String) throws {
        _ = try LayerApplier.apply(fd: fd, to: ApplyTarget(root: directory, whiteouts: .remove))
    }

    /// Removes `paths` (absolute inside `root`, subtrees included) the way a layer's whiteouts
    /// do, so a path through a symlink cannot reach outside `root`: a tar of `.wh.` entries,
    /// written to an anonymous memory file and applied.
    public static func remove(_ paths: [String], under root: String) throws {
        let wanted = paths.map { RawPath(String($0.drop { $0 == "/" })) }.filter { !$0.isEmpty }
        guard !wanted.isEmpty else { return }
        let fd = try syscallChecked("memfd_create", "crisp-whiteouts") { crisp_memfd("crisp-whiteouts") }
        defer { close(fd) }
        let writer = try TarStreamWriter(fd: fd)
        for path in wanted {
            let (dir, name) = path.split
            try writer.writeWhiteout(at: dir.appending(RawPath(Array(".wh.".utf8) + name.bytes)))
        }
        try writer.finish()
        lseek(fd, 0, SEEK_SET)
        _ = try LayerApplier.apply(fd: fd, to: ApplyTarget(root: root, whiteouts: .remove))
    }
}
