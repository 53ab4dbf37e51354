public import CrispCore

/// A container's process and mount labels (`process.selinuxLabel`, `linux.mountLabel`).
public struct SELinuxLabels: Sendable, Equatable {
    public var process: String
    public var mount: String

    /// The container-selinux defaults: processes run as `container_t` and files are
    /// `container_file_t`; privileged containers run as `spc_t`, which the policy leaves
    /// unconfined. The pod's MCS level keeps pods apart, so the options may change user, role
    /// and type but a level only where they name one.
    public static func make(options: SELinuxOptions, podLevel: String, privileged: Bool) -> SELinuxLabels {
        let level = options.level.isEmpty ? podLevel : options.level
        let user = options.user.isEmpty ? "system_u" : options.user
        let role = options.role.isEmpty ? "system_r" : options.role
        let type = privileged ? "spc_t" : (options.type.isEmpty ? "container_t" : options.type)
        return SELinuxLabels(process: "\(user):\(role):\(type):\(level)",
                             mount: "system_u:object_r:container_file_t:\(level)")
    }
}
