public import CrispCore
import CrispOCI
import CrispOS
public import CrispRuntime
import Foundation

extension ContainerService {
    /// Applies new CPU and memory limits through the runtime's `update`; zero fields are left
    /// alone (UpdateContainerResources).
    public func update(_ id: String, _ resources: ContainerResourceRequest) async throws(CrispError) {
        let found = try lookup(id)
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            guard let c = containers[found.id] else { throw .notFound("container \(found.id) was removed") }
            guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
            var r = RuntimeSpec.Resources()
            (r.cpu, r.memory) = SpecBuilder.cpuAndMemory(resources)
            // The same limits are left out as at create (cpuset, swap without accounting).
            settings.cgroupNotices.log(settings.cgroups.controllers.restrict(&r), host: settings.cgroups, container: c.name,
                                       logger: logger)
            try await runtime.update(id: c.id, handler: try handler(c.runtimeHandler), resources: r)
            // Re-read: the container may have exited meanwhile, and that must not be overwritten.
            guard var updated = containers[c.id] else { return }
            var kept = updated.resources ?? ContainerRecord.Resources()
            kept.apply(r)
            updated.resources = kept
            try persist(updated)
        }
    }

    /// Asks conmon to reopen the log file (after the kubelet rotated it), through its control
    /// FIFO: message type 2. Returns once the new file exists, as CRI-O does: the kubelet reads
    /// it right after the call.
    public func reopenLog(_ id: String) async throws(CrispError) {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        let ctl = c.bundle + "/ctl"
        try Self.askConmonToReopenLog(control: ctl, container: c.id)
        guard try await FileAppearance.wait(for: c.logPath, timeout: .seconds(10)) else {
            throw CrispError(.deadlineExceeded, "conmon of container \(c.id) did not reopen its log \(c.logPath) within 10 s")
        }
    }

    static func askConmonToReopenLog(control path: String, container: String) throws(CrispError) {
        do { try tellConmon(control: path, "2 0 0") } catch where error.call == "open" {
            throw CrispError(.failedPrecondition, "conmon of container \(container) does not listen on \(path)", cause: error)
        } catch {
            throw CrispError(.internal, "cannot ask conmon to reopen the log of \(container)", cause: error)
        }
    }

    /// An attached terminal's new size (`1 ROWS COLS`); a container already gone is let be.
    public static func resizeAttachedTerminal(control path: String, columns: UInt16, rows: UInt16) {
        try? tellConmon(control: path, "1 \(rows) \(columns)")
    }

    /// conmon's control FIFO takes one `TYPE A B` message per line. Opened without blocking:
    /// with no conmon reading (the container is gone) the open fails at once instead of
    /// hanging; closed once written.
    static func tellConmon(control path: String, _ message: String) throws(SystemCallError) {
        let control = try OpenFile(path, .writeNonBlocking)
        try control.write(Array((message + "\n").utf8))
    }
}
