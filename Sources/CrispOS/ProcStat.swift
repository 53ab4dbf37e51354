/// The fields of a `/proc/PID/stat` line after the command name (field 2), which may hold spaces
/// and parentheses, so they are counted from its last ')'. `fields[0]` is field 3 (the state),
/// `fields[1]` field 4 (the parent), `fields[19]` field 22 (the start time).
public enum ProcStat {
    public static func fieldsAfterCommand(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    /// `/proc/PID/stat` read now, split as above; nil once the process is gone.
    public static func fields(pid: Int32) -> [Substring]? {
        readSmallFile("/proc/\(pid)/stat").flatMap(fieldsAfterCommand)
    }
}
