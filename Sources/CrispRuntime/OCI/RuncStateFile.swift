import CrispOS
import Foundation

/// What crisp reads from runc's own state file (`ROOT/ID/state.json`): the container's init
/// process, whether it has a PID namespace of its own, and its cgroup directories. It lets a stop
/// signal the process directly, without a runc exec, and a delete find the cgroups runc failed to
/// remove; crun keeps another format, and then the file is not there.
struct RuncStateFile: Decodable, Equatable {
    struct Namespace: Decodable, Equatable {
        var type: String
        var path: String?
    }
    /// A hook's fields are not needed, only whether there are any.
    struct Hook: Decodable, Equatable {}
    struct Cgroups: Decodable, Equatable {
        /// Whether systemd manages them (a transient unit to stop on delete), not cgroupfs.
        var systemd: Bool?
        enum CodingKeys: String, CodingKey { case systemd = "Systemd" }
    }
    struct Config: Equatable {
        var namespaces: [Namespace]?
        /// Hook kind (`poststart`, …) → hooks.
        var hooks: [String: [Hook]?]?
        var cgroups: Cgroups?

        func hasHooks(_ kind: String) -> Bool {
            !((hooks?[kind] ?? nil) ?? []).isEmpty
        }
    }

    var initProcessPID: Int32
    var initProcessStart: UInt64
    var config: Config?
    /// Controller → absolute directory (`memory` → /sys/fs/cgroup/memory/PARENT/crisp-ID).
    var cgroupPaths: [String: String]?
    var intelRdtPath: String?

    enum CodingKeys: String, CodingKey {
        case initProcessPID = "init_process_pid"
        case initProcessStart = "init_process_start"
        case config
        case cgroupPaths = "cgroup_paths"
        case intelRdtPath = "intel_rdt_path"
    }

    /// Killing its init kills every process of the container only when the container has a PID
    /// namespace of its own (a pod's shared one is joined by path).
    var ownsPIDNamespace: Bool {
        config?.namespaces?.contains { $0.type == "NEWPID" && ($0.path ?? "").isEmpty } ?? false
    }

    static func read(root: String, id: String) -> RuncStateFile? {
        guard !root.isEmpty, !id.contains("/"),
              let data = FileManager.default.contents(atPath: root + "/" + id + "/state.json") else { return nil }
        return try? JSONDecoder().decode(RuncStateFile.self, from: data)
    }

    /// Signals the init process itself. nil when crisp cannot tell (the whole of a container
    /// in a shared PID namespace, or an unexpected failure): the caller then asks the runtime.
    func signalInit(_ signal: Int32, wholeContainer: Bool) -> ProcessIdentity.Delivery? {
        guard !wholeContainer || ownsPIDNamespace else { return nil }
        return try? ProcessIdentity.signal(pid: initProcessPID, startedAt: initProcessStart, signal)
    }
}

extension RuncStateFile.Config: Decodable {
    /// libcontainer's Go field `Hooks` has no JSON tag, so runc 1.1 writes the key capitalised;
    /// the lower-case key is read too, should a later runc tag it.
    enum CodingKeys: String, CodingKey {
        case namespaces, cgroups
        case hooks = "Hooks"
        case hooksTagged = "hooks"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        namespaces = try c.decodeIfPresent([RuncStateFile.Namespace].self, forKey: .namespaces)
        cgroups = try c.decodeIfPresent(RuncStateFile.Cgroups.self, forKey: .cgroups)
        hooks = try c.decodeIfPresent([String: [RuncStateFile.Hook]?].self, forKey: .hooks)
            ?? c.decodeIfPresent([String: [RuncStateFile.Hook]?].self, forKey: .hooksTagged)
    }
}
