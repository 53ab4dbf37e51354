public import CrispCore

/// Where a container's log goes. The CRI gives `log_path` relative to the pod's log directory;
/// the kubelet sends `NAME/ATTEMPT.log`. A path that is absolute or climbs out with `..` would let
/// a request make conmon create and write a file anywhere on the host, so it is refused, not
/// cleaned (CRI-O joins and cleans, which keeps `../` escapes working).
public enum ContainerLogPath {
    /// The absolute log path for `requested`, inside `podLogDirectory`, or inside `ownDirectory`
    /// (the container's record directory) when the pod has no log directory.
    public static func resolve(_ requested: String, podLogDirectory: String, ownDirectory: String) throws(CrispError) -> String {
        if requested.isEmpty { return ownDirectory + "/console.log" }
        guard !requested.hasPrefix("/") else {
            throw .invalidArgument("log_path \(requested) is absolute; it must be relative to the pod's log_directory")
        }
        let parts = requested.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.contains("..") else {
            throw .invalidArgument("log_path \(requested) climbs out of the pod's log_directory with ..")
        }
        guard !requested.utf8.contains(0), parts.last.map({ $0 != "." }) ?? false else {
            throw .invalidArgument("log_path \(requested) does not name a file")
        }
        return (podLogDirectory.isEmpty ? ownDirectory : podLogDirectory) + "/" + parts.joined(separator: "/")
    }

    /// A pod's log directory must be absolute: a relative one would land wherever crispd runs.
    public static func validateDirectory(_ directory: String) throws(CrispError) {
        guard directory.isEmpty || (directory.hasPrefix("/") && !directory.utf8.contains(0)) else {
            throw .invalidArgument("log_directory \(directory) must be an absolute path")
        }
    }
}
