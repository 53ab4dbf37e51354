public import CrispCore
import CrispOCI
import CrispRuntime
import Foundation
import Glibc

/// New resources to apply to a running container (UpdateContainerResources).
public struct ResourceUpdate: Sendable {
    public var cpuShares: Int64 = 0
    public var cpuQuota: Int64 = 0
    public var cpuPeriod: Int64 = 0
    public var cpusetCPUs = ""
    public var cpusetMems = ""
    public var memoryLimit: Int64 = 0
    public var memorySwapLimit: Int64 = 0
    public init() {}
}

extension ContainerService {
    /// Applies new cgroup limits through the runtime's `update`; zero fields are left alone.
    public func update(_ id: String, _ u: ResourceUpdate) async throws(CrispError) {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        var r = RuntimeSpec.Resources()
        var cpu = RuntimeSpec.CPU()
        if u.cpuShares > 0 { cpu.shares = UInt64(u.cpuShares) }
        if u.cpuQuota != 0 { cpu.quota = u.cpuQuota }
        if u.cpuPeriod > 0 { cpu.period = UInt64(u.cpuPeriod) }
        if !u.cpusetCPUs.isEmpty { cpu.cpus = u.cpusetCPUs }
        if !u.cpusetMems.isEmpty { cpu.mems = u.cpusetMems }
        if cpu != RuntimeSpec.CPU() { r.cpu = cpu }
        if u.memoryLimit > 0 {
            var m = RuntimeSpec.Memory()
            m.limit = u.memoryLimit
            m.swap = u.memorySwapLimit > 0 ? u.memorySwapLimit : u.memoryLimit
            r.memory = m
        }
        let file = "\(recordsDirectory)/\(c.id)/update.json"
        try Bundle.writeJSON(r, to: file)
        defer { unlink(file) }
        try await runtime.update(id: c.id, handler: try handler(c.runtimeHandler), resourcesFile: file)
    }

    /// Asks conmon to reopen the log file (after the kubelet rotated it), through its control
    /// FIFO: message type 2.
    public func reopenLog(_ id: String) throws(CrispError) {
        let c = try lookup(id)
        guard case .running = c.lifecycle else { throw .failedPrecondition("container \(c.id) is not running") }
        let ctl = c.bundle + "/ctl"
        let fd = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw CrispError(.failedPrecondition, "conmon of container \(c.id) does not listen on \(ctl)",
                             cause: SystemCallError("open", ctl, errno: errno))
        }
        defer { close(fd) }
        let message = "2 0 0\n"
        let n = message.withCString { write(fd, $0, strlen($0)) }
        guard n == message.utf8.count else {
            throw CrispError(.internal, "cannot ask conmon to reopen the log of \(c.id)", cause: SystemCallError("write", ctl, errno: errno))
        }
    }
}
