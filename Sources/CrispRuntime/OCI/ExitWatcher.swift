public import CrispCore
import CrispOS
public import Foundation

/// A container exit as conmon recorded it: the file `EXITDIR/ID` holds the exit code.
public struct ContainerExit: Sendable, Equatable {
    public var id: String
    public var exitCode: Int32
    /// When conmon wrote the file, i.e. when the container exited.
    public var at: Date

    public init(id: String, exitCode: Int32, at: Date) {
        self.id = id
        self.exitCode = exitCode
        self.at = at
    }
}

/// Learns container exits from conmon's exit directory through inotify — no polling. One
/// thread waits on an `InotifyWatcher` until `stop()`.
public final class ExitWatcher: Sendable {
    public let directory: String
    public let exits: AsyncStream<ContainerExit>
    private let watcher: InotifyWatcher

    public init(directory: String) throws(CrispError) {
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CrispError(.internal, "cannot create exit directory \(directory): \(error.localizedDescription)")
        }
        watcher = try InotifyWatcher()
        try watcher.add(directory, mask: [.closeWrite, .movedTo])
        let (exits, continuation) = AsyncStream.makeStream(of: ContainerExit.self, bufferingPolicy: .unbounded)
        self.exits = exits
        watcher.startLoop(name: "crisp-exit-watch") { events in
            for event in events {
                // conmon writes through a temporary name (glib's `ID.XXXXXX`) and renames it
                // into place; the temporary file is whole at its close, so reading it would
                // record an exit under that name, kept for good. Container ids are hex: a name
                // with a dot, or one that is not UTF-8, is not an exit file.
                let name = event.nameString
                if name.isEmpty || name.contains(".") { continue }
                if let exit = Self.read(directory: directory, id: name) { continuation.yield(exit) }
            }
        } finished: {
            continuation.finish()
        }
    }

    /// Reads an exit file that already exists (recovery after a restart).
    public func recordedExit(id: String) -> ContainerExit? {
        Self.read(directory: directory, id: id)
    }

    static func read(directory: String, id: String) -> ContainerExit? {
        let path = directory + "/" + id
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let code = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        let at = ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? Date()
        return ContainerExit(id: id, exitCode: code, at: at)
    }

    /// Stops watching; `exits` finishes. Idempotent.
    public func stop() {
        watcher.stop()
    }

    deinit {
        stop()
    }
}
