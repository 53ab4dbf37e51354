import Foundation

/// The text of crisp's default AppArmor profile for `apparmor_parser`.
public enum AppArmorTemplate {
    /// - Parameter name: the profile's name; only letters, digits, `-`, `_` and `.` are kept,
    ///   so a configured name cannot inject rules.
    public static func render(name: String) -> String {
        let safe = String(name.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." })
        return String(decoding: PackageResources.apparmor_default_tmpl, as: UTF8.self)
            .replacingOccurrences(of: "{{name}}", with: safe)
    }
}
