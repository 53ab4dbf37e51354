public import CrispCore

/// The AppArmor profile a container's process gets (`process.apparmorProfile`).
public enum AppArmorDecision: Sendable, Equatable {
    /// No profile in the spec.
    case none
    case profile(String)
}

public enum AppArmorPolicy {
    /// crisp's RuntimeDefault profile, loaded from `AppArmorTemplate` when the kernel lacks it.
    public static let defaultProfileName = "crisp-default"

    /// The CRI's rules: RuntimeDefault (and an unset request, as the kubelet means it) use
    /// `defaultProfile`, Unconfined and privileged containers get none, a localhost profile
    /// must be loaded already. On a host without AppArmor, RuntimeDefault and Unconfined cannot
    /// mean anything and are no-ops, but a specific profile is refused: running without the
    /// confinement someone named would be a silent hole.
    /// - Throws: `invalidArgument` naming the profile when it cannot be applied.
    public static func decide(_ request: ProfileRequest, privileged: Bool, host: SecurityHost,
                              defaultProfile: String = defaultProfileName) throws(CrispError) -> AppArmorDecision {
        switch request {
        case .localhost(let name):
            guard host.appArmorEnabled else {
                throw .invalidArgument("AppArmor profile \"\(name)\" was asked for, but AppArmor is not enabled on this node")
            }
            if privileged { return .none }
            guard host.loadedAppArmorProfiles.contains(name) else {
                throw .invalidArgument("AppArmor profile \"\(name)\" is not loaded on this node (load it with apparmor_parser first)")
            }
            return .profile(name)
        case .unconfined:
            return .none
        case .unset, .runtimeDefault:
            guard host.appArmorEnabled, !privileged else { return .none }
            return .profile(defaultProfile)
        }
    }
}
