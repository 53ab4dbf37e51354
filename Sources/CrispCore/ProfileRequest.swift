
/// What a pod or container asked for in a CRI `SecurityProfile` (seccomp or AppArmor), or in the
/// deprecated string fields that older kubelets still send.
public enum ProfileRequest: Sendable, Equatable, Codable {
    /// Nothing asked for: seccomp's meaning depends on `seccomp_use_default_when_empty`.
    case unset
    case runtimeDefault
    case unconfined
    /// A seccomp profile file (absolute path) or a loaded AppArmor profile's name.
    case localhost(String)

    /// The deprecated `seccomp_profile_path` and `apparmor_profile` strings: `runtime/default`,
    /// `docker/default`, `unconfined`, `localhost/REF` and empty.
    /// - Throws: `invalidArgument` for anything else, naming the field and the value.
    public static func deprecated(_ value: String, field: String) throws(CrispError) -> ProfileRequest {
        switch value {
        case "": return .unset
        case "runtime/default", "docker/default": return .runtimeDefault
        case "unconfined": return .unconfined
        default:
            guard value.hasPrefix("localhost/"), value.count > "localhost/".count else {
                throw .invalidArgument("\(field) \"\(value)\" is none of runtime/default, docker/default, unconfined or localhost/<profile>")
            }
            return .localhost(String(value.dropFirst("localhost/".count)))
        }
    }
}
