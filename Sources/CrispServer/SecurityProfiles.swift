import CRIAPI
import CrispCore

/// CRI security profiles and SELinux options → the service's request values.
enum SecurityProfiles {
    /// The `SecurityProfile` field wins; the deprecated string is read when the field is absent,
    /// as the kubelet sends one or the other.
    static func request(has: Bool, _ p: Runtime_V1_SecurityProfile, deprecated: String,
                        field: String) throws(CrispError) -> ProfileRequest {
        guard has else { return try ProfileRequest.deprecated(deprecated, field: field) }
        switch p.profileType {
        case .runtimeDefault: return .runtimeDefault
        case .unconfined: return .unconfined
        case .localhost:
            guard !p.localhostRef.isEmpty else { throw .invalidArgument("\(field): a Localhost profile needs localhost_ref") }
            return .localhost(p.localhostRef)
        case .UNRECOGNIZED(let n): throw .invalidArgument("\(field): unknown profile type \(n)")
        }
    }

    static func selinux(has: Bool, _ o: Runtime_V1_SELinuxOption) -> SELinuxOptions? {
        guard has else { return nil }
        return SELinuxOptions(user: o.user, role: o.role, type: o.type, level: o.level)
    }
}
