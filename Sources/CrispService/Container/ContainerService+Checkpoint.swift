public import CrispCore
import CrispOCI
import CrispOS
import CrispRuntime
import CrispStorage
import Foundation
import Logging

extension ContainerService {
    /// CheckpointContainer (KEP-2008, forensic checkpointing): the running container's processes
    /// are dumped through `runtime checkpoint` and CRIU while it is paused, and written with its
    /// spec, its root filesystem changes and its log to a tar at `location` (mode 0600: it holds
    /// the container's memory). The container keeps running. Needs `enable_criu_support`.
    public func checkpoint(_ id: String, location: String, timeout: Duration) async throws(CrispError) {
        try await requireCriu(for: "CheckpointContainer")
        guard location.hasPrefix("/") else {
            throw .invalidArgument("checkpoint location \"\(location)\" must be an absolute path of the archive to write")
        }
        let found = try lookup(id)
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            guard let c = containers[found.id] else { throw .notFound("container \(found.id) was removed") }
            guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running; only a running container can be checkpointed") }
            if c.idmappedRootfs == true {
                throw .failedPrecondition("container \(c.id) runs in a pod with its own user namespace; crisp cannot checkpoint those yet")
            }
            let handler = try handler(c.runtimeHandler)
            let work = "\(recordsDirectory)/\(c.id)/checkpoint-work"
            try? FileManager.default.removeItem(atPath: work)
            try make(directory: work)
            defer { try? FileManager.default.removeItem(atPath: work) }

            let specData: Data
            do { specData = try Data(contentsOf: URL(fileURLWithPath: c.bundle + "/config.json")) } catch {
                throw CrispError(.internal, "reading the spec of container \(c.id) from \(c.bundle) failed: \(error.localizedDescription)")
            }
            let spec = try? JSONDecoder().decode(RuntimeSpec.self, from: specData)
            try AtomicFile.write(specData, to: work + "/" + CheckpointArchive.specDump, durable: false)
            let now = SandboxService.now()
            let config = CheckpointArchive.Config(
                id: c.id, name: c.name, rootfsImage: c.userSpecifiedImage ?? c.image, rootfsImageRef: c.imageID,
                rootfsImageName: c.userSpecifiedImage ?? c.image, runtime: c.runtimeHandler,
                createdTime: CheckpointArchive.time(nanoseconds: c.createdAt), checkpointedTime: CheckpointArchive.time(nanoseconds: now),
                restoredTime: CheckpointArchive.zeroTime, restored: false)
            try Bundle.writeJSON(config, to: work + "/" + CheckpointArchive.configDump, durable: false)
            let binds = spec.map(CheckpointArchive.bindMounts(of:)) ?? []
            let bindEntries = binds.compactMap { m -> CheckpointArchive.BindMount? in
                guard let source = m.source, let attributes = try? FileManager.default.attributesOfItem(atPath: source) else { return nil }
                let isDirectory = (attributes[.type] as? FileAttributeType) == .typeDirectory
                return .init(source: source, destination: m.destination, fileType: isDirectory ? "directory" : "file",
                             permissions: (attributes[.posixPermissions] as? NSNumber)?.uint32Value ?? 0o755)
            }
            if !bindEntries.isEmpty { try Bundle.writeJSON(bindEntries, to: work + "/" + CheckpointArchive.bindMounts, durable: false) }

            // Paused, so the memory images and the file changes are of one moment.
            try await runtime.pause(id: c.id, handler: handler)
            do {
                try await runtime.checkpoint(id: c.id, handler: handler, imagePath: work + "/" + CheckpointArchive.checkpointDirectory,
                                             workPath: work, leaveRunning: true, timeout: timeout)
                let excluded = Array(CheckpointArchive.managedDestinations) + binds.map(\.destination)
                let diffPath = work + "/" + CheckpointArchive.rootfsDiff
                let diffFile: OpenFile
                do { diffFile = try OpenFile(diffPath, .createNew(permissions: 0o600)) } catch {
                    throw CrispError(.internal, "cannot create the file changes archive of container \(c.id)", cause: error)
                }
                let diff: CheckpointDiff
                do {
                    diff = try await storage.exportContainerChangesForCheckpoint(ContainerID(uncheckedRawValue: c.id), to: diffFile.fd, excluding: excluded)
                } catch {
                    throw error as? CrispError ?? CrispError(.internal, "exporting the changes of container \(c.id) failed", cause: error)
                }
                if !diff.deleted.isEmpty { try Bundle.writeJSON(diff.deleted, to: work + "/" + CheckpointArchive.deletedFiles, durable: false) }
            } catch {
                try? await runtime.resume(id: c.id, handler: handler)
                throw error as? CrispError ?? CrispError(.internal, "checkpointing container \(c.id) failed", cause: error)
            }
            try await runtime.resume(id: c.id, handler: handler)
            if FileManager.default.fileExists(atPath: c.logPath) {
                try? FileManager.default.copyItem(atPath: c.logPath, toPath: work + "/" + CheckpointArchive.containerLog)
            }
            try writeArchive(of: work, to: location)
            guard var current = containers[c.id] else { return }
            current.checkpointedAt = now
            try persist(current)
            logger.info("container checkpointed", metadata: ["container": "\(c.id)", "location": "\(location)"])
        }
    }

    /// CRIU must be enabled and work; the answer is kept once it does (a failed probe is asked
    /// again next time: the operator may fix the host meanwhile).
    func requireCriu(for operation: String) async throws(CrispError) {
        guard criuEnabled else {
            throw .failedPrecondition("\(operation) needs checkpoint/restore support: set enable_criu_support = true in [crisp.runtime] (and install criu)")
        }
        if criuWorks { return }
        if let problem = await Criu.problem() {
            throw .failedPrecondition("\(operation) cannot run: \(problem)")
        }
        criuWorks = true
    }

    /// The archive is written beside `location` and renamed into place, so a reader never sees
    /// half of one; mode 0600, as it holds the container's memory.
    func writeArchive(of directory: String, to location: String) throws(CrispError) {
        let temporary = location + ".crisp-partial"
        try? FileOperations.removeFile(temporary)
        do throws(CrispError) {
            let file: OpenFile
            do { file = try OpenFile(temporary, .createNew(permissions: 0o600)) } catch {
                throw CrispError(.invalidArgument, "cannot create the checkpoint archive \(location): \(error)", cause: error)
            }
            do {
                try TreeArchive.write(directory: directory, to: file.fd)
                try file.sync()
            } catch {
                throw CrispError(.internal, "writing the checkpoint archive \(location) failed", cause: error)
            }
        } catch {
            try? FileOperations.removeFile(temporary)
            throw error
        }
        do { try FileOperations.rename(temporary, to: location) } catch {
            try? FileOperations.removeFile(temporary)
            throw CrispError(.internal, "cannot move the checkpoint archive into place at \(location)", cause: error)
        }
    }
}
