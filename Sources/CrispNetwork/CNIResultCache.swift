public import CrispCore
import CrispOS
import Foundation
import Glibc

/// What ADD used and produced for one attachment, so that DEL and CHECK run with exactly that
/// even after a restart or after the config file changed or vanished.
public struct CNICacheEntry: Sendable, Equatable, Codable {
    public static let currentKind = "crispCNICacheV1"
    public var kind: String = CNICacheEntry.currentKind
    public var networkName: String
    /// The network config document as ADD read it.
    public var config: JSONValue
    public var source: String
    public var runtime: CNIRuntimeConf
    public var pod: PodNetworkIdentity
    /// Nil while ADD is in flight (written before ADD so a crash mid-ADD can still be undone).
    public var result: JSONValue?

    public init(network: CNINetworkConfigList, runtime: CNIRuntimeConf, pod: PodNetworkIdentity, result: JSONValue?) {
        self.networkName = network.name
        self.config = network.document
        self.source = network.source
        self.runtime = runtime
        self.pod = pod
        self.result = result
    }

    /// The config list as ADD used it.
    public func network() throws(CrispError) -> CNINetworkConfigList {
        try CNINetworkConfigList(document: config, source: source.isEmpty ? "cached config of \(networkName)" : source + " (cached)")
    }
}

/// The on-disk result cache: one JSON file per pod under `directory`, written with
/// write-temp-fsync-rename (and a directory fsync) so a crash leaves the old or the new file,
/// never a torn one. Safe to use concurrently for different pods.
public struct CNIResultCache: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    func path(_ podID: String) -> String { directory + "/" + podID + ".json" }

    public func store(_ entry: CNICacheEntry, podID: String) throws(CrispError) {
        try Self.checkName(podID)
        if mkdirAll(directory) != 0 {
            throw CrispError(.internal, "cannot create CNI cache directory \(directory)",
                             cause: SystemCallError("mkdir", directory, errno: errno))
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let text: String
        do { text = String(decoding: try enc.encode(entry), as: UTF8.self) } catch {
            throw .internal("cannot encode CNI cache entry for pod \(podID): \(error)")
        }
        do { try writeFileAtomically(path(podID), text, mode: 0o600) } catch {
            throw CrispError(.internal, "cannot write CNI cache entry \(path(podID))", cause: error as? SystemCallError)
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// The entry for a pod, nil when none exists. A corrupt file is an error naming it.
    public func load(podID: String) throws(CrispError) -> CNICacheEntry? {
        try Self.checkName(podID)
        let p = path(podID)
        guard let text = readSmallFile(p) else {
            if errno == ENOENT { return nil }
            throw CrispError(.internal, "cannot read CNI cache entry \(p)", cause: SystemCallError("open", p, errno: errno))
        }
        do {
            let e = try JSONDecoder().decode(CNICacheEntry.self, from: Data(text.utf8))
            guard e.kind == CNICacheEntry.currentKind else { throw CrispError.internal("unknown kind \"\(e.kind)\"") }
            return e
        } catch {
            throw .internal("CNI cache entry \(p) is corrupt: \(error)")
        }
    }

    public func remove(podID: String) throws(CrispError) {
        try Self.checkName(podID)
        let p = path(podID)
        if unlink(p) != 0 && errno != ENOENT {
            throw CrispError(.internal, "cannot remove CNI cache entry \(p)", cause: SystemCallError("unlink", p, errno: errno))
        }
    }

    /// Pod ids with an entry (for restore and garbage collection).
    public func podIDs() -> [String] {
        CNIConfigLoader.fileNames(in: directory, suffix: ".json").map { String($0.dropLast(5)) }
    }

    static func checkName(_ id: String) throws(CrispError) {
        guard !id.isEmpty, !id.contains("/"), !id.hasPrefix("."), id.utf8.count <= 200 else {
            throw .invalidArgument("invalid pod id \"\(id)\" for the CNI cache")
        }
    }
}
