/// What the security decisions need to know about the host, probed once at start-up by the
/// daemon (`CrispRuntime.SecurityProbe`) and passed in as values, so every decision is a pure
/// function that tests drive with any host they like.
public struct SecurityHost: Sendable, Equatable {
    /// `uname -m`: x86_64, aarch64, …
    public var machine: String
    public var kernelMajor: Int
    public var kernelMinor: Int
    /// `/sys/module/apparmor/parameters/enabled` says Y and securityfs shows the AppArmor tree.
    public var appArmorEnabled: Bool
    /// The AppArmor profiles the kernel has loaded (names), when enabled.
    public var loadedAppArmorProfiles: Set<String>
    /// selinuxfs is mounted and the policy is loaded.
    public var selinuxEnabled: Bool
    /// Secondary ABIs of the machine (libseccomp names) this kernel does not run: x32 on a kernel
    /// built without it, or with it turned off. Only what was probed; empty means all run.
    public var kernelLacksArchitectures: Set<String>

    public init(machine: String, kernelMajor: Int = 0, kernelMinor: Int = 0, appArmorEnabled: Bool = false,
                loadedAppArmorProfiles: Set<String> = [], selinuxEnabled: Bool = false,
                kernelLacksArchitectures: Set<String> = []) {
        self.machine = machine
        self.kernelMajor = kernelMajor
        self.kernelMinor = kernelMinor
        self.appArmorEnabled = appArmorEnabled
        self.loadedAppArmorProfiles = loadedAppArmorProfiles
        self.selinuxEnabled = selinuxEnabled
        self.kernelLacksArchitectures = kernelLacksArchitectures
    }

    /// The host's architecture in libseccomp's names; nil for one crisp does not know.
    public var seccompArchitecture: String? {
        switch machine {
        case "x86_64", "amd64": "SCMP_ARCH_X86_64"
        case "aarch64", "arm64": "SCMP_ARCH_AARCH64"
        case "i386", "i486", "i586", "i686": "SCMP_ARCH_X86"
        case "armv7l", "armv6l", "arm": "SCMP_ARCH_ARM"
        case "ppc64le": "SCMP_ARCH_PPC64LE"
        case "s390x": "SCMP_ARCH_S390X"
        case "riscv64": "SCMP_ARCH_RISCV64"
        default: nil
        }
    }

    /// Whether `name`, in libseccomp's or Go's spelling, is this host's architecture.
    func isArchitecture(_ name: String) -> Bool {
        guard let native = seccompArchitecture else { return false }
        if name == native { return true }
        let go: [String: String] = ["amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "386": "SCMP_ARCH_X86",
                                    "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
                                    "riscv64": "SCMP_ARCH_RISCV64"]
        return go[name] == native
    }

    /// `minKernel` of a rule ("5.8"); one that does not parse counts as met rather than dropping the rule.
    func kernelAtLeast(_ version: String) -> Bool {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return true }
        return (kernelMajor, kernelMinor) >= (parts[0], parts[1])
    }
}
