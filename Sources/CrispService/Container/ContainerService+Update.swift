public import CrispCore
import CrispOCI
public import CrispRuntime
import Foundation
import Glibc

extension ContainerService {
    /// Applies new CPU and memory limits through the runtime's `update`; zero fields are left
    /// alone (UpdateContainerResources).
    public func update(_ id: String, _ resources: ContainerSpecInput.ResourceRequest) async throws(CrispError) {
        let found = try lookup(id)
        try await serializer.exclusively(found.id) { () async throws(CrispError) in
            guard let c = containers[found.id] else { throw .notFound("container \(found.id) was removed") }
            guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
            var r = RuntimeSpec.Resources()
            (r.cpu, r.memory) = SpecBuilder.cpuAndMemory(resources)
            // The same limits are left out as at create (cpuset, swap without accounting).
            settings.cgroupNotices.log(settings.cgroups.controllers.restrict(&r), host: settings.cgroups, container: c.name,
                                       logger: logger)
            let file = "\(recordsDirectory)/\(c.id)/update.json"
            try Bundle.writeJSON(r, to: file)
            defer { unlink(file) }
            try await runtime.update(id: c.id, handler: try handler(c.runtimeHandler), resourcesFile: file)
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
        let fd = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw CrispError(.failedPrecondition, "conmon of container \(c.id) does not listen on \(ctl)",
                             cause: SystemCallError("open", ctl, errno: errno))
        }
        let message = "2 0 0\n"
        let n = message.withCString { write(fd, $0, strlen($0)) }
        let e = errno
        close(fd)
        guard n == message.utf8.count else {
            throw CrispError(.internal, "cannot ask conmon to reopen the log of \(c.id)", cause: SystemCallError("write", ctl, errno: e))
        }
        guard try await FileAppearance.wait(for: c.logPath, timeout: .seconds(10)) else {
            throw CrispError(.deadlineExceeded, "conmon of container \(c.id) did not reopen its log \(c.logPath) within 10 s")
        }
    }
}
