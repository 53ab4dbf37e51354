public import CrispOCI

/// Turns a `SeccompProfile` into the `linux.seccomp` object of one container: the rules whose
/// conditions hold for its final capability set and this host, the host's architectures, and
/// the syscalls grouped as runc expects them. Pure.
public enum SeccompCompiler {
    public static func compile(_ profile: SeccompProfile, capabilities: Set<String>,
                               host: SecurityHost) -> RuntimeSpec.Seccomp {
        let native = host.seccompArchitecture
        var architectures = profile.architectures
        if let native, let entry = profile.archMap?.first(where: { $0.architecture == native }) {
            // An ABI the kernel does not run has no programs to allow: its binaries cannot even
            // be exec'd. Each architecture in the filter costs runc 6–8 ms to compile at every
            // container create, and without it a stray call of that ABI meets the bad-architecture
            // action (kill) rather than ENOSYS. A profile's explicit `architectures` stay as written.
            architectures = [entry.architecture] + (entry.subArchitectures ?? []).filter { !host.kernelLacksArchitectures.contains($0) }
        }
        var out = RuntimeSpec.Seccomp(defaultAction: profile.defaultAction, defaultErrnoRet: profile.defaultErrnoRet,
                                      architectures: architectures, flags: profile.flags)
        var syscalls: [RuntimeSpec.Seccomp.Syscall] = []
        for rule in profile.syscalls ?? [] where applies(rule, capabilities: capabilities, host: host) {
            syscalls.append(RuntimeSpec.Seccomp.Syscall(
                names: rule.allNames, action: rule.action, errnoRet: rule.errnoRet,
                args: rule.args.map { $0.map { RuntimeSpec.Seccomp.Arg(index: $0.index, value: $0.value, valueTwo: $0.valueTwo, op: $0.op) } }))
        }
        out.syscalls = syscalls.isEmpty ? nil : syscalls
        return out
    }

    static func applies(_ rule: SeccompProfile.Rule, capabilities: Set<String>, host: SecurityHost) -> Bool {
        if let inc = rule.includes {
            if let caps = inc.caps, !caps.allSatisfy({ capabilities.contains(capName($0)) }) { return false }
            if let arches = inc.arches, !arches.contains(where: host.isArchitecture) { return false }
            if let min = inc.minKernel, !host.kernelAtLeast(min) { return false }
        }
        if let exc = rule.excludes {
            if let caps = exc.caps, caps.contains(where: { capabilities.contains(capName($0)) }) { return false }
            if let arches = exc.arches, arches.contains(where: host.isArchitecture) { return false }
            if let min = exc.minKernel, host.kernelAtLeast(min) { return false }
        }
        return true
    }

    static func capName(_ c: String) -> String {
        let u = c.uppercased()
        return u.hasPrefix("CAP_") ? u : "CAP_" + u
    }
}
