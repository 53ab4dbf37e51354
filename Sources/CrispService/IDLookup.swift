import CrispCore

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
