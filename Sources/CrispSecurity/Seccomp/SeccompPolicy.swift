public import CrispCore
import Foundation

/// Which seccomp profile a container (or a pod's infra container) runs under.
public enum SeccompSelection: Sendable, Equatable {
    case unconfined
    case runtimeDefault
    /// An absolute path to a profile file on the node.
    case localhost(path: String)
}

/// The profile chosen and loaded, ready for the spec builder, which compiles it against the
/// container's final capabilities.
public enum SeccompInput: Sendable, Equatable {
    case unconfined
    /// `name` is how ContainerStatus shows it: `RuntimeDefault` or `localhost/PATH`.
    case profile(name: String, SeccompProfile)

    public var name: String {
        switch self {
        case .unconfined: "Unconfined"
        case .profile(let name, _): name
        }
    }
}

public enum SeccompPolicy {
    /// The CRI's rules, and CRI-O's: privileged containers are unconfined whatever they ask for;
    /// an unset profile means RuntimeDefault when `useDefaultWhenEmpty` is on (crisp's default,
    /// as CRI-O's) and unconfined otherwise, as the CRI itself defines it.
    /// - Throws: `invalidArgument` for a localhost profile whose path is empty or relative.
    public static func select(_ request: ProfileRequest, privileged: Bool,
                              useDefaultWhenEmpty: Bool) throws(CrispError) -> SeccompSelection {
        if privileged { return .unconfined }
        switch request {
        case .unset: return useDefaultWhenEmpty ? .runtimeDefault : .unconfined
        case .runtimeDefault: return .runtimeDefault
        case .unconfined: return .unconfined
        case .localhost(let path):
            guard path.hasPrefix("/") else {
                throw .invalidArgument("seccomp localhost profile \"\(path)\" must be an absolute path on the node")
            }
            return .localhost(path: path)
        }
    }

    /// crisp's own RuntimeDefault profile (`Resources/seccomp-default.json`, compiled into the
    /// binary so no resource bundle has to be installed next to it).
    public static let builtInDefault: SeccompProfile = {
        do {
            return try SeccompProfile.parse(PackageResources.seccomp_default_json, source: "the built-in default")
        } catch {
            // The file is part of the package and a unit test parses it; reaching this is a build defect.
            fatalError("crisp's built-in seccomp profile does not parse: \(error)")
        }
    }()
}
