import CrispRuntime
import Logging
import Synchronization

/// Remembers which cgroup controllers have been reported missing, so the pod and container
/// services (which share one through their settings) log each once per daemon: the kubelet asks
/// for hugepage limits on every container, and one line per container would bury the log.
/// Safe to call from any task.
public final class CgroupNotices: Sendable {
    private let once = OnceNotices()

    public init() {}

    /// Logs the omissions whose controller has not been logged before.
    func log(_ omissions: [CgroupControllers.Omission], host: CgroupHost, container: String, logger: Logger) {
        for o in omissions where once.first(o.controller) {
            logger.notice("limit left out: this host's cgroup hierarchy cannot take it; logged once per controller",
                          metadata: ["controller": "\(o.controller)", "left out": "\(o.what)", "container": "\(container)",
                                     "cgroups": "\(host.mode.rawValue)"])
        }
    }
}
