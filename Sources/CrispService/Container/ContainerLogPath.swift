public import CrispCore

/// Where a container's log goes. The CRI gives `log_path` relative to the pod's log directory;
/// the kubelet sends `NAME/ATTEMPT.log`. In a pod with a log directory, a path that is absolute or
/// climbs out with `..` would let a request make conmon create and write a file outside it, so it
/// is refused, not cleaned (CRI-O joins and cleans, which keeps `../` escapes working). A pod
/// without one (crictl's, by hand) has no directory to stay in: an absolute path is used as given.
public enum ContainerLogPath {
    /// The absolute log path for `requested`: inside `podLogDirectory`; as given when absolute
    /// and the pod has no log directory; inside `ownDirectory` (the container's record
    /// directory) otherwise.
    public static func resolve(_ requested: String, podLogDirectory: String, ownDirectory: String) throws(CrispError) -> String {
        if requested.isEmpty { return ownDirectory + "/console.log" }
        let absolute = requested.hasPrefix("/")
        guard !absolute || podLogDirectory.isEmpty else {
            throw .invalidArgument("log_path \(requested) is absolute; it must be relative to the pod's log_directory \(podLogDirectory)")
        }
        let parts = requested.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.contains("..") else {
            throw .invalidArgument("log_path \(requested) climbs out of its directory with ..")
        }
        guard !requested.utf8.contains(0), parts.last.map({ $0 != "." }) ?? false else {
            throw .invalidArgument("log_path \(requested) does not name a file")
        }
        let base = absolute ? "" : (podLogDirectory.isEmpty ? ownDirectory : podLogDirectory)
        return base + "/" + parts.joined(separator: "/")
    }

    /// A pod's log directory must be absolute: a relative one would land wherever crispd runs.
    public static func validateDirectory(_ directory: String) throws(CrispError) {
        guard directory.isEmpty || (directory.hasPrefix("/") && !directory.utf8.contains(0)) else {
            throw .invalidArgument("log_directory \(directory) must be an absolute path")
        }
    }
}
