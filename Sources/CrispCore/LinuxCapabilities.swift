/// Linux capability names without the `CAP_` prefix, in kernel order (capabilities(7), up to
/// CHECKPOINT_RESTORE). One list for config validation and the spec builder.
public enum LinuxCapabilities {
    public static let all: [String] = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    ]

    /// The capabilities (CAP_ form) whose bits are set in a capability mask as /proc/PID/status prints it
    /// (`CapBnd:\t000001fffeffffff`); nil when the text is not such a mask.
    public static func names(inMask hex: String) -> [String]? {
        guard let bits = UInt64(String(hex.filter { !$0.isWhitespace }), radix: 16) else { return nil }
        return all.enumerated().filter { bits & (1 << UInt64($0.offset)) != 0 }.map { "CAP_" + $0.element }
    }
}
