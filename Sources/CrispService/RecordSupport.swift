import CrispCore
import CrispOS
import Foundation

/// Finds a record by full id or unique id prefix, as crictl lets people type them.
/// `kind` names the record in errors ("pod sandbox", "container").
func lookup<Record>(_ idOrPrefix: String, in records: [String: Record], kind: String) throws(CrispError) -> Record {
    guard !idOrPrefix.isEmpty else { throw .invalidArgument("\(kind) id is empty") }
    if let r = records[idOrPrefix] { return r }
    let matches = records.filter { $0.key.hasPrefix(idOrPrefix) }
    if matches.count == 1, let only = matches.first { return only.value }
    if matches.isEmpty { throw .notFound("\(kind) \"\(idOrPrefix)\" not found") }
    throw .invalidArgument("\(kind) id prefix \"\(idOrPrefix)\" is ambiguous (\(matches.count) match)")
}

/// Creates a directory and its parents for a pod's or container's own files.
func make(directory: String) throws(CrispError) {
    do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
        throw CrispError(.internal, "cannot create \(directory): \(error.localizedDescription)")
    }
}

/// Adds search (not read) permission for group and others to a directory of crisp's: the
/// mapped root of a pod with its own user namespace is an unprivileged host uid, and runc's
/// init must walk to the root filesystem as that uid.
func allowTraversal(_ dir: String) throws(CrispError) {
    do {
        let mode = try FileStatus(of: dir).permissions
        guard mode & 0o011 != 0o011 else { return }
        try FileOperations.changeMode(dir, to: mode | 0o011)
    } catch {
        throw CrispError(.internal, "cannot let the pod's user walk through \(dir)", cause: error)
    }
}
