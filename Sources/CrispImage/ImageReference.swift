public import CrispCore

/// A parsed, normalised image reference (the distribution reference grammar): registry host,
/// repository path, and a tag or a digest. Valid by construction.
///
/// `busybox` → `docker.io/library/busybox:latest`; `name:tag@sha256:…` keeps only the digest
/// (the digest wins, as when pulling).
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// `docker.io`, `quay.io`, `localhost:5000`, `[::1]:5000`.
    public let registry: String
    /// `library/busybox`, `a/b/c`.
    public let repository: String
    public let tag: String?
    public let digest: CrispCore.Digest?
    /// True when the input named no registry (a "short name"), so that registries.conf's
    /// `unqualified-search-registries` apply.
    public let isShortName: Bool

    public static let defaultRegistry = "docker.io"
    public static let defaultTag = "latest"
    static let maxNameLength = 255

    /// `registry/repository`, the name without tag or digest.
    public var name: String { registry + "/" + repository }

    /// The full normalised reference: `name:tag` or `name@digest`.
    public var description: String {
        if let digest { return name + "@" + digest.description }
        return name + ":" + (tag ?? Self.defaultTag)
    }

    /// Parses and normalises a reference; throws `.invalidArgument` naming the input and the rule it breaks.
    public init(parsing input: String) throws(CrispError) {
        func bad(_ why: String) -> CrispError { .invalidArgument("invalid image reference \"\(input)\": \(why)") }
        guard !input.isEmpty else { throw bad("empty") }
        var rest = Substring(input)
        var digest: CrispCore.Digest?
        if let at = rest.firstIndex(of: "@") {
            do { digest = try CrispCore.Digest(parsing: String(rest[rest.index(after: at)...])) } catch {
                throw bad("bad digest: \(error.message)")
            }
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let t = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(t) else { throw bad("bad tag \"\(t)\" (want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})") }
            tag = t
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw bad("missing repository name") }
        guard rest.utf8.count <= Self.maxNameLength else { throw bad("name longer than \(Self.maxNameLength) characters") }
        var registry = Self.defaultRegistry
        var path = rest
        var short = true
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.lowercased() != first {
                guard Self.isValidDomain(first) else { throw bad("bad registry host \"\(first)\"") }
                registry = String(first)
                path = rest[rest.index(after: slash)...]
                short = false
            }
        }
        if registry == "index.docker.io" { registry = Self.defaultRegistry }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isValidPathComponent(component) else {
                if component.lowercased() != component { throw bad("repository name must be lowercase") }
                throw bad("bad repository path component \"\(component)\"")
            }
        }
        var repository = String(path)
        if registry == Self.defaultRegistry && !repository.contains("/") { repository = "library/" + repository }
        self.registry = registry
        self.repository = repository
        self.digest = digest
        self.tag = digest == nil ? (tag ?? Self.defaultTag) : nil
        self.isShortName = short
    }

    /// The same repository path on another registry (a mirror or a search registry); the
    /// Docker Hub `library/` rule is applied for `docker.io`.
    public func on(registry newRegistry: String, repository newRepository: String? = nil) -> ImageReference {
        var repo = newRepository ?? repository
        if newRegistry == Self.defaultRegistry && !repo.contains("/") { repo = "library/" + repo }
        return ImageReference(registry: newRegistry, repository: repo, tag: tag, digest: digest, isShortName: false)
    }

    /// The same name with a different tag or digest.
    public func with(tag: String?, digest: CrispCore.Digest?) -> ImageReference {
        ImageReference(registry: registry, repository: repository, tag: digest == nil ? (tag ?? Self.defaultTag) : nil,
                       digest: digest, isShortName: isShortName)
    }

    init(registry: String, repository: String, tag: String?, digest: CrispCore.Digest?, isShortName: Bool) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.isShortName = isShortName
    }

    /// The repository as written in a short name (without the `library/` Docker Hub adds).
    var shortRepository: String {
        repository.hasPrefix("library/") ? String(repository.dropFirst(8)) : repository
    }

    // MARK: grammar

    static func isAlnumLower(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
    static func isAlnum(_ c: UInt8) -> Bool { isAlnumLower(c) || (c >= 65 && c <= 90) }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func isValidPathComponent(_ s: Substring) -> Bool {
        let b = Array(s.utf8)
        guard let f = b.first, let l = b.last, isAlnumLower(f), isAlnumLower(l) else { return false }
        var sep: [UInt8] = []
        for c in b {
            if isAlnumLower(c) {
                if !sep.isEmpty {
                    let ok = sep == [46] || sep == [95] || sep == [95, 95] || sep.allSatisfy { $0 == 45 }
                    guard ok else { return false }
                    sep.removeAll()
                }
            } else if c == 46 || c == 95 || c == 45 {
                sep.append(c)
            } else {
                return false
            }
        }
        return true
    }

    /// `[\w][\w.-]{0,127}`
    static func isValidTag(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let f = b.first, b.count <= 128, isAlnum(f) || f == 95 else { return false }
        return b.allSatisfy { isAlnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
    }

    /// `host[:port]` where host is dot-separated `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?` labels
    /// or a bracketed IPv6 address.
    static func isValidDomain(_ s: Substring) -> Bool {
        var host = s
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return false }
            let inner = s[s.index(after: s.startIndex)..<close]
            guard !inner.isEmpty, inner.utf8.allSatisfy({ isAlnum($0) || $0 == 58 || $0 == 46 }) else { return false }
            let after = s[s.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":") else { return false }
            return isValidPort(after.dropFirst())
        }
        if let colon = s.lastIndex(of: ":") {
            guard isValidPort(s[s.index(after: colon)...]) else { return false }
            host = s[..<colon]
        }
        return !host.isEmpty && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            let b = Array(label.utf8)
            guard let f = b.first, let l = b.last, isAlnum(f), isAlnum(l) else { return false }
            return b.allSatisfy { isAlnum($0) || $0 == 45 }
        }
    }

    static func isValidPort(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.count <= 5 && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
