public import CrispConfig
public import CrispCore
public import CrispSecurity
import CrispOS
import Foundation
public import Logging

/// The security configuration the services apply, with the host facts probed at start-up.
public struct SecuritySettings: Sendable {
    public var host: SecurityHost
    /// What RuntimeDefault means: crisp's built-in profile or `seccomp_profile`'s.
    public var seccompDefault: SeccompProfile
    public var seccompUseDefaultWhenEmpty: Bool
    /// `apparmor_profile`: the profile RuntimeDefault means where AppArmor is on.
    public var appArmorDefault: String
    /// Pods' SELinux MCS levels; used only where SELinux is on.
    public let mcs = MCSAllocator()
    /// Which "not enforced on this host" decisions were logged.
    public let notices = OnceNotices()

    public init(host: SecurityHost, seccompDefault: SeccompProfile = SeccompPolicy.builtInDefault,
                seccompUseDefaultWhenEmpty: Bool = true, appArmorDefault: String = AppArmorPolicy.defaultProfileName) {
        self.host = host
        self.seccompDefault = seccompDefault
        self.seccompUseDefaultWhenEmpty = seccompUseDefaultWhenEmpty
        self.appArmorDefault = appArmorDefault
    }

    /// From the configuration: reads `seccomp_profile` when set.
    /// - Throws: `invalidArgument` when that file is missing or malformed.
    public static func load(config: CrispConfiguration, host: SecurityHost) throws(CrispError) -> SecuritySettings {
        var s = SecuritySettings(host: host, seccompUseDefaultWhenEmpty: config.runtime.seccompUseDefaultWhenEmpty,
                                 appArmorDefault: config.runtime.appArmorProfile)
        if !config.runtime.seccompProfile.isEmpty {
            s.seccompDefault = try readSeccompProfile(config.runtime.seccompProfile)
        }
        return s
    }

    /// The chosen profile, loaded: a localhost profile's file is read and checked here, so a
    /// bad one fails CreateContainer before anything is created.
    public func seccompInput(_ selection: SeccompSelection) throws(CrispError) -> SeccompInput {
        switch selection {
        case .unconfined: .unconfined
        case .runtimeDefault: .profile(name: "RuntimeDefault", seccompDefault)
        case .localhost(let path): .profile(name: "localhost/" + path, try Self.readSeccompProfile(path))
        }
    }

    /// Profiles are small; a cap keeps a wrong path (a device, a huge file) from eating memory.
    static func readSeccompProfile(_ path: String) throws(CrispError) -> SeccompProfile {
        let data: Data
        do {
            let url = URL(fileURLWithPath: path)
            let size = (try url.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey]))
            guard size.isRegularFile == true else { throw CrispError.invalidArgument("seccomp profile \(path) is not a regular file") }
            guard (size.fileSize ?? 0) <= 4 << 20 else { throw CrispError.invalidArgument("seccomp profile \(path) is larger than 4 MiB") }
            data = try Data(contentsOf: url)
        } catch let e as CrispError {
            throw e
        } catch {
            let reason = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.localizedDescription ?? error.localizedDescription
            throw .invalidArgument("seccomp profile \(path) cannot be read: \(reason)")
        }
        return try SeccompProfile.parse([UInt8](data), source: path)
    }
}

/// What one container (or a pod's infra container) runs under.
public struct SecurityDecision: Sendable, Equatable {
    public var seccomp: SeccompInput
    public var appArmor: AppArmorDecision
    public var selinux: SELinuxLabels?
}

extension SecuritySettings {
    /// Seccomp, AppArmor and SELinux for one container, from what it asked for and this host.
    /// - Parameter podLevel: the pod's MCS level where SELinux is on.
    /// - Throws: `invalidArgument` for a localhost profile that is relative, missing, malformed
    ///   or (AppArmor) not loaded, or any AppArmor profile named where AppArmor is off.
    public func decide(seccomp: ProfileRequest, appArmor: ProfileRequest, selinux: SELinuxOptions?, privileged: Bool,
                       podLevel: String?, logger: Logger) throws(CrispError) -> SecurityDecision {
        let s = try seccompInput(SeccompPolicy.select(seccomp, privileged: privileged, useDefaultWhenEmpty: seccompUseDefaultWhenEmpty))
        let a = try AppArmorPolicy.decide(appArmor, privileged: privileged, host: host, defaultProfile: appArmorDefault)
        if !host.appArmorEnabled, appArmor != .unset, notices.first("apparmor-off") {
            logger.notice("AppArmor is not enabled on this node: RuntimeDefault and Unconfined AppArmor requests apply no profile (logged once)")
        }
        var labels: SELinuxLabels?
        if host.selinuxEnabled {
            labels = SELinuxLabels.make(options: selinux ?? SELinuxOptions(), podLevel: podLevel ?? "s0", privileged: privileged)
        } else if selinux != nil, selinux != SELinuxOptions(), notices.first("selinux-off") {
            logger.notice("SELinux is not enabled on this node: SELinux options are left out of container specs (logged once)")
        }
        return SecurityDecision(seccomp: s, appArmor: a, selinux: labels)
    }
}
