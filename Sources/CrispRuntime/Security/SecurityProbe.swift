public import CrispCore
public import CrispSecurity
import CCrispShim
import CrispOS
import Foundation
import Glibc

/// Reads the host facts the security decisions need: once at start-up, and again for AppArmor
/// after crisp loads its profile.
public enum SecurityProbe {
    /// `selfStatus`: this process's /proc/self/status, when the caller has read it already.
    public static func detect(root: String = "", selfStatus: String? = nil) -> SecurityHost {
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        let appArmor = appArmorEnabled(root: root)
        return SecurityHost(machine: machine, kernelMajor: numbers.first ?? 0, kernelMinor: numbers.dropFirst().first ?? 0,
                            appArmorEnabled: appArmor,
                            loadedAppArmorProfiles: appArmor ? loadedAppArmorProfiles(root: root) : [],
                            selinuxEnabled: selinuxEnabled(root: root),
                            kernelLacksArchitectures: lackedArchitectures(machine: machine, selfStatus: selfStatus))
    }

    /// x32 on an x86_64 kernel that answers an x32 call with ENOSYS. Asked only when crispd runs
    /// under no seccomp filter of its own (one without x32 would kill it for asking); then
    /// nothing is assumed missing.
    static func lackedArchitectures(machine: String, selfStatus: String?) -> Set<String> {
        guard machine == "x86_64", underNoSeccompFilter(status: selfStatus ?? readSmallFile("/proc/self/status") ?? "") else { return [] }
        return crisp_x32_syscalls_work() == 0 ? ["SCMP_ARCH_X32"] : []
    }

    /// `Seccomp:` in /proc/PID/status is 0 for a process with no filter (and no strict mode).
    static func underNoSeccompFilter(status: String) -> Bool {
        ProcStatus.field("Seccomp", in: status)?.trimmingCharacters(in: .whitespaces) == "0"
    }

    /// The module says it is on, and securityfs shows its tree (without securityfs nothing can
    /// be loaded or checked, which CRI-O also treats as off).
    static func appArmorEnabled(root: String) -> Bool {
        guard readSmallFile(root + "/sys/module/apparmor/parameters/enabled")?.hasPrefix("Y") == true else { return false }
        return access(root + "/sys/kernel/security/apparmor", F_OK) == 0
    }

    /// Lines of `/sys/kernel/security/apparmor/profiles` read `NAME (MODE)`.
    static func loadedAppArmorProfiles(root: String) -> Set<String> {
        guard let text = readSmallFile(root + "/sys/kernel/security/apparmor/profiles") else { return [] }
        return parseProfiles(text)
    }

    static func parseProfiles(_ text: String) -> Set<String> {
        Set(text.split(separator: "\n").compactMap { line in
            guard let open = line.lastIndex(of: "(") else { return nil }
            let name = line[..<open].trimmingCharacters(in: .whitespaces)
            return name.isEmpty ? nil : String(name)
        })
    }

    /// selinuxfs mounted with a loaded policy (its `enforce` file exists), in either mode.
    static func selinuxEnabled(root: String) -> Bool {
        access(root + "/sys/fs/selinux/enforce", F_OK) == 0
    }
}

/// Loads crisp's default AppArmor profile with `apparmor_parser`, when the kernel lacks it.
public enum AppArmorLoader {
    /// - Returns: the host facts again, now listing the profile.
    /// - Throws: `failedPrecondition` when apparmor_parser is missing or refuses the profile.
    public static func ensureDefault(_ host: SecurityHost, name: String = AppArmorPolicy.defaultProfileName,
                                     parser: String = "/sbin/apparmor_parser") async throws(CrispError) -> SecurityHost {
        guard host.appArmorEnabled, !host.loadedAppArmorProfiles.contains(name) else { return host }
        guard access(parser, X_OK) == 0 else {
            throw .failedPrecondition("AppArmor is enabled but \(parser) is missing; cannot load the \(name) profile (install the apparmor package)")
        }
        // -K: no cache; -r: replace (also loads when absent). The profile text comes on stdin.
        let out = try await Spawn.run(Spawn.Options(path: parser, arguments: ["-Kr"]),
                                      stdin: Array(AppArmorTemplate.render(name: name).utf8), timeout: .seconds(30))
        guard out.status == 0 else {
            throw .failedPrecondition("apparmor_parser could not load the \(name) profile: \(out.stderrText)")
        }
        var updated = host
        updated.loadedAppArmorProfiles.insert(name)
        return updated
    }
}
