/// Fields of a `/proc/PID/status` text (`Name:\tvalue` lines).
public enum ProcStatus {
    /// The text after `NAME:` on its line ("CapBnd" gives "\t000001ffffffffff"), untrimmed.
    public static func field(_ name: String, in status: String) -> String? {
        status.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
    }
}
