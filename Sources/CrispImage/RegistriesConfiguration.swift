public import CrispCore
import Foundation
import TOMLKit

/// containers-registries.conf(5) version 2: search registries for short names, and per-prefix
/// rules (rewrite location, insecure, blocked, mirrors). A value; reload by loading again.
public struct RegistriesConfiguration: Sendable, Equatable {
    public var unqualifiedSearchRegistries: [String]
    public var registries: [Registry]

    public init(unqualifiedSearchRegistries: [String] = [], registries: [Registry] = []) {
        self.unqualifiedSearchRegistries = unqualifiedSearchRegistries
        self.registries = registries
    }

    /// When a mirror may serve a pull.
    public enum PullFromMirror: String, Sendable, Equatable, Codable {
        case all
        case digestOnly = "digest-only"
        case tagOnly = "tag-only"
    }

    public struct Mirror: Sendable, Equatable, Codable {
        public var location: String
        public var insecure: Bool
        public var pullFromMirror: PullFromMirror

        public init(location: String, insecure: Bool = false, pullFromMirror: PullFromMirror = .all) {
            self.location = location
            self.insecure = insecure
            self.pullFromMirror = pullFromMirror
        }

        enum CodingKeys: String, CodingKey { case location, insecure, pullFromMirror = "pull-from-mirror" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            location = try c.decode(String.self, forKey: .location)
            insecure = try c.decodeIfPresent(Bool.self, forKey: .insecure) ?? false
            pullFromMirror = try c.decodeIfPresent(PullFromMirror.self, forKey: .pullFromMirror) ?? .all
        }
    }

    /// One `[[registry]]` table.
    public struct Registry: Sendable, Equatable, Codable {
        /// What the rule matches: `host[:port][/path]` or `*.domain`.
        public var prefix: String
        /// Where matching images are really pulled from (defaults to `prefix`).
        public var location: String
        public var insecure: Bool
        public var blocked: Bool
        public var mirrors: [Mirror]
        /// The older `mirror-by-digest-only = true`: mirrors without their own
        /// `pull-from-mirror` serve pulls by digest only.
        public var mirrorByDigestOnly: Bool

        public init(prefix: String, location: String? = nil, insecure: Bool = false, blocked: Bool = false,
                    mirrors: [Mirror] = [], mirrorByDigestOnly: Bool = false) {
            self.prefix = prefix
            self.location = location ?? prefix
            self.insecure = insecure
            self.blocked = blocked
            self.mirrors = mirrors
            self.mirrorByDigestOnly = mirrorByDigestOnly
        }

        enum CodingKeys: String, CodingKey {
            case prefix, location, insecure, blocked, mirror
            case mirrorByDigestOnly = "mirror-by-digest-only"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let location = try c.decodeIfPresent(String.self, forKey: .location) ?? ""
            let prefix = try c.decodeIfPresent(String.self, forKey: .prefix) ?? ""
            self.prefix = prefix.isEmpty ? location : prefix
            self.location = location
            insecure = try c.decodeIfPresent(Bool.self, forKey: .insecure) ?? false
            blocked = try c.decodeIfPresent(Bool.self, forKey: .blocked) ?? false
            mirrors = try c.decodeIfPresent([Mirror].self, forKey: .mirror) ?? []
            mirrorByDigestOnly = try c.decodeIfPresent(Bool.self, forKey: .mirrorByDigestOnly) ?? false
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(prefix, forKey: .prefix)
            try c.encode(location, forKey: .location)
            try c.encode(insecure, forKey: .insecure)
            try c.encode(blocked, forKey: .blocked)
            try c.encode(mirrors, forKey: .mirror)
        }
    }

    struct File: Decodable {
        var unqualifiedSearchRegistries: [String]?
        var registry: [Registry]?
        var registries: EmptyTable?
        struct EmptyTable: Decodable {}
        enum CodingKeys: String, CodingKey {
            case unqualifiedSearchRegistries = "unqualified-search-registries", registry, registries
        }
    }

    /// Parses one document. Throws `.invalidArgument` naming `source` for TOML errors, the v1
    /// format (`[registries.search]`), a rule without prefix and location, or a bad prefix.
    public static func parse(_ text: String, source: String) throws(CrispError) -> RegistriesConfiguration {
        let file: File
        do { file = try TOMLDecoder().decode(File.self, from: text) } catch {
            throw .invalidArgument("\(source): not a valid registries.conf: \(error)")
        }
        if file.registries != nil {
            throw .invalidArgument("\(source): the v1 format ([registries.search] …) is not supported; use [[registry]] tables (v2)")
        }
        var out = RegistriesConfiguration(unqualifiedSearchRegistries: file.unqualifiedSearchRegistries ?? [])
        for var r in file.registry ?? [] {
            guard !r.prefix.isEmpty else {
                throw .invalidArgument("\(source): a [[registry]] table has neither prefix nor location")
            }
            if r.location.isEmpty { r.location = r.prefix }
            try validatePrefix(r.prefix, source: source)
            if r.mirrorByDigestOnly {
                for i in r.mirrors.indices where r.mirrors[i].pullFromMirror == .all { r.mirrors[i].pullFromMirror = .digestOnly }
            }
            out.registries.append(r)
        }
        return out
    }

    static func validatePrefix(_ p: String, source: String) throws(CrispError) {
        if p.hasPrefix("*.") {
            guard !p.dropFirst(2).contains("/"), !p.dropFirst(2).contains("*"), p.count > 2 else {
                throw .invalidArgument("\(source): invalid wildcard prefix \"\(p)\": want *.domain with nothing after it")
            }
        } else if p.contains("*") {
            throw .invalidArgument("\(source): invalid prefix \"\(p)\": a wildcard is only allowed as a leading \"*.\"")
        }
    }

    /// Loads `path` and then every `*.conf` in `registries.conf.d/` beside it, in name order; a
    /// later file replaces the search list when it sets one and replaces rules with the same
    /// prefix. A missing main file is an empty configuration.
    public static func load(path: String) throws(CrispError) -> RegistriesConfiguration {
        var merged = RegistriesConfiguration()
        var files: [String] = []
        if FileManager.default.fileExists(atPath: path) { files.append(path) }
        let dropIn = (path as NSString).deletingLastPathComponent + "/registries.conf.d"
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dropIn) {
            files += names.filter { $0.hasSuffix(".conf") }.sorted().map { dropIn + "/" + $0 }
        }
        for f in files {
            guard let data = FileManager.default.contents(atPath: f), let text = String(data: data, encoding: .utf8) else {
                throw .invalidArgument("\(f): cannot read registries configuration")
            }
            let one = try parse(text, source: f)
            if !one.unqualifiedSearchRegistries.isEmpty || text.contains("unqualified-search-registries") {
                merged.unqualifiedSearchRegistries = one.unqualifiedSearchRegistries
            }
            for r in one.registries {
                merged.registries.removeAll { $0.prefix == r.prefix }
                merged.registries.append(r)
            }
        }
        return merged
    }
}
