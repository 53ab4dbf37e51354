import CrispCore
public import Logging
import CrispOS
import Glibc

/// What a scan of the network directory found: the valid configs in file-name order, the files
/// skipped with why, and the default network.
public struct CNIConfigSet: Sendable, Equatable {
    public var directory: String
    public var networks: [CNINetworkConfigList]
    public var skipped: [(file: String, reason: String)]
    /// `cni_default_network` when set and present, else the first valid config by file name.
    public var defaultNetwork: CNINetworkConfigList?
    /// Set when `cni_default_network` names a network that no valid file defines.
    public var defaultNetworkMissing: String?

    public static func == (a: CNIConfigSet, b: CNIConfigSet) -> Bool {
        a.directory == b.directory && a.networks == b.networks && a.defaultNetwork == b.defaultNetwork
            && a.skipped.map(\.file) == b.skipped.map(\.file) && a.skipped.map(\.reason) == b.skipped.map(\.reason)
            && a.defaultNetworkMissing == b.defaultNetworkMissing
    }
}

/// Loads CNI network configurations from a directory (`.conflist`, `.conf`, `.json`).
/// Pure apart from reading the directory; safe to call from any thread.
public struct CNIConfigLoader: Sendable {
    public static let extensions = [".conflist", ".conf", ".json"]
    public static let maxFileSize = 1 << 20

    public var directory: String
    public var defaultNetworkName: String

    public init(directory: String, defaultNetworkName: String = "") {
        self.directory = directory
        self.defaultNetworkName = defaultNetworkName
    }

    /// Reads every config file; invalid ones are skipped and logged with the reason. A missing
    /// directory yields an empty set.
    public func load(logger: Logger? = nil) -> CNIConfigSet {
        var set = CNIConfigSet(directory: directory, networks: [], skipped: [], defaultNetwork: nil)
        let names = Self.configFileNames(in: directory)
        var seen = Set<String>()
        for name in names {
            let path = directory + "/" + name
            do throws(CrispError) {
                let net = try Self.loadFile(path)
                if seen.contains(net.name) {
                    // Like ocicni: the first file by name wins; later duplicates are ignored.
                    throw CrispError.invalidArgument("\(path): network \"\(net.name)\" is already defined by an earlier file")
                }
                seen.insert(net.name)
                set.networks.append(net)
            } catch {
                set.skipped.append((name, error.message))
                logger?.warning("skipping CNI config file", metadata: ["file": "\(path)", "reason": "\(error.message)"])
            }
        }
        if defaultNetworkName.isEmpty {
            set.defaultNetwork = set.networks.first
        } else if let n = set.networks.first(where: { $0.name == defaultNetworkName }) {
            set.defaultNetwork = n
        } else {
            set.defaultNetworkMissing = defaultNetworkName
        }
        return set
    }

    /// Config file names in the directory, sorted (byte order, as libcni's ConfFiles).
    static func configFileNames(in dir: String) -> [String] {
        fileNames(in: dir, suffixes: extensions)
    }

    static func fileNames(in dir: String, suffix: String) -> [String] { fileNames(in: dir, suffixes: [suffix]) }

    static func fileNames(in dir: String, suffixes: [String]) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            guard suffixes.contains(where: { name.hasSuffix($0) }) else { continue }
            names.append(name)
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func loadFile(_ path: String) throws(CrispError) -> CNINetworkConfigList {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw CrispError(.notFound, "cannot read \(path)", cause: SystemCallError("stat", path, errno: errno))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .invalidArgument("\(path) is not a regular file") }
        guard st.st_size <= maxFileSize else { throw .invalidArgument("\(path) is larger than \(maxFileSize) bytes") }
        guard let text = readSmallFile(path) else {
            throw CrispError(.notFound, "cannot read \(path)", cause: SystemCallError("open", path, errno: errno))
        }
        return try CNINetworkConfigList(bytes: Array(text.utf8), source: path)
    }
}
