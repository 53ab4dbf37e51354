public import CrispCore
import CrispOCI
import CrispOS
import CrispRuntime
import CrispStorage
import Foundation
import Logging

/// A checkpoint archive unpacked for a container being created from it.
struct RestoreSource: Sendable {
    var directory: String
    var config: CheckpointArchive.Config
    var spec: RuntimeSpec

    /// The image the checkpointed container ran on; its layers must be in the store, as in CRI-O.
    var baseImage: String { config.rootfsImageRef ?? config.rootfsImageName ?? config.rootfsImage ?? "" }
}

extension ContainerService {
    /// CreateContainer names a checkpoint archive (an absolute path) as its image: the archive
    /// is unpacked under the container's record, and the container is made on the checkpointed
    /// container's base image with the request's own pod, mounts and settings. Its processes
    /// come back at StartContainer (`restoreProcesses`).
    func unpackCheckpoint(_ archive: String, id: ContainerID, name: String, mounts: [String]) async throws(CrispError) -> RestoreSource {
        try await requireCriu(for: "restoring container \(name) from \(archive)")
        let directory = "\(recordsDirectory)/\(id.rawValue)/restore"
        try make(directory: directory)
        let file: OpenFile
        do { file = try OpenFile(archive, .read) } catch {
            throw CrispError(error.isNotFound ? .notFound : .invalidArgument, "cannot open checkpoint archive \(archive)", cause: error)
        }
        let fd = file.fd
        do {
            try await runOnThread(name: "crisp-restore") { () throws -> Void in try TreeArchive.extract(fd: fd, into: directory) }
        } catch {
            throw CrispError(.invalidArgument, "\(archive) is not a readable checkpoint archive: \(error)")
        }
        func read<T: Decodable>(_ file: String, as: T.Type) throws(CrispError) -> T {
            do { return try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))) } catch {
                throw CrispError(.invalidArgument, "\(archive) is not a checkpoint archive: its \(file) is missing or unreadable (\(error.localizedDescription))")
            }
        }
        let source = RestoreSource(directory: directory, config: try read(CheckpointArchive.configDump, as: CheckpointArchive.Config.self),
                                   spec: try read(CheckpointArchive.specDump, as: RuntimeSpec.self))
        guard FileManager.default.fileExists(atPath: "\(directory)/\(CheckpointArchive.checkpointDirectory)/inventory.img") else {
            throw .invalidArgument("\(archive) holds no CRIU images (checkpoint/inventory.img is missing)")
        }
        if let missing = CheckpointArchive.missingMounts(checkpointed: source.spec, requested: mounts) {
            throw .invalidArgument("restoring \(archive) needs the request to mount again what the checkpointed container had: \(missing.joined(separator: ", "))")
        }
        guard !source.baseImage.isEmpty else { throw .invalidArgument("\(archive) does not say which image the container ran on (config.dump)") }
        return source
    }

    /// StartContainer of a container made from a checkpoint: the archived file changes are put
    /// back into its root filesystem (deletions first, so a replaced directory ends up as it
    /// was), its log is carried over, and conmon runs `runtime restore` from the CRIU images.
    /// Returns the restored init process, already running.
    func restoreProcesses(_ c: ContainerRecord, handler: RuntimeHandler, from directory: String) async throws(CrispError) -> Int32 {
        let spec: RuntimeSpec
        do { spec = try JSONDecoder().decode(RuntimeSpec.self, from: Data(contentsOf: URL(fileURLWithPath: c.bundle + "/config.json"))) } catch {
            throw CrispError(.internal, "reading the spec of container \(c.id) failed: \(error.localizedDescription)")
        }
        guard let root = spec.root?.path else { throw .internal("the spec of container \(c.id) has no root") }
        let deleted = (try? JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/" + CheckpointArchive.deletedFiles)))) ?? []
        let diff = directory + "/" + CheckpointArchive.rootfsDiff
        do {
            try await runOnThread(name: "crisp-restore") { () throws -> Void in
                try TreeArchive.remove(deleted, under: root)
                // A checkpoint of a container that changed no file has no diff.
                guard let file = try? OpenFile(diff, .read) else { return }
                try TreeArchive.extract(fd: file.fd, into: root)
            }
        } catch {
            throw CrispError(.internal, "putting back the file changes of container \(c.id) failed: \(error)")
        }
        let log = directory + "/" + CheckpointArchive.containerLog
        if FileManager.default.fileExists(atPath: log) {
            try? FileManager.default.removeItem(atPath: c.logPath)
            try? FileManager.default.copyItem(atPath: log, toPath: c.logPath)
        }
        let pod = try await sandboxes.status(c.sandboxID)
        var options = launch(id: c.id, name: c.name, attempt: c.attempt, pod: pod, handler: handler, bundle: c.bundle,
                                    logPath: c.logPath, stdin: c.stdin ?? false, stdinOnce: c.stdinOnce ?? false,
                                    terminal: spec.process?.terminal ?? false)
        options.restorePath = directory + "/" + CheckpointArchive.checkpointDirectory
        let created = try await runtime.create(spec: spec, launch: options)
        logger.info("container restored from a checkpoint", metadata: ["container": "\(c.id)", "pid": "\(created.pid)"])
        return created.pid
    }
}
