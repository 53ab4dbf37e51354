public import CrispCore

/// One place to try for a pull: the reference rewritten for that endpoint.
public struct PullSource: Sendable, Equatable, CustomStringConvertible {
    public var reference: ImageReference
    /// Plain HTTP, or HTTPS without certificate verification, is allowed for this endpoint.
    public var insecure: Bool
    public var isMirror: Bool

    public init(reference: ImageReference, insecure: Bool = false, isMirror: Bool = false) {
        self.reference = reference
        self.insecure = insecure
        self.isMirror = isMirror
    }

    public var description: String { (isMirror ? "mirror " : "") + reference.description }
}

extension RegistriesConfiguration {
    /// The names to try for `reference`, in order: for a short name, one per
    /// `unqualified-search-registries` entry (Docker Hub when the list is empty); otherwise the
    /// reference itself.
    public func candidates(for reference: ImageReference) -> [ImageReference] {
        guard reference.isShortName, !unqualifiedSearchRegistries.isEmpty else { return [reference] }
        return unqualifiedSearchRegistries.map { reference.on(registry: $0, repository: reference.shortRepository) }
    }

    /// The `[[registry]]` rule for a reference: the longest matching prefix; an exact prefix
    /// beats a wildcard one.
    public func rule(for reference: ImageReference) -> Registry? {
        let full = reference.description
        var best: (rank: Int, r: Registry)?
        for r in registries {
            var rank: Int?
            if r.prefix.hasPrefix("*.") {
                let suffix = r.prefix.dropFirst(1)  // ".domain"
                let host = reference.registry.split(separator: ":").first.map(String.init) ?? reference.registry
                if host.hasSuffix(suffix) { rank = r.prefix.count }
            } else if full.hasPrefix(r.prefix) {
                let next = full.dropFirst(r.prefix.count).first
                if next == nil || next == "/" || next == ":" || next == "@" { rank = 10_000 + r.prefix.count }
            }
            if let rank, rank > (best?.rank ?? -1) { best = (rank, r) }
        }
        return best?.r
    }

    /// Where to pull `reference` from, in order: the rule's mirrors allowed for this kind of
    /// reference (by tag or by digest), then the primary location. Throws `.permissionDenied`
    /// naming the rule when the registry is blocked, `.invalidArgument` when a rewritten
    /// location is not a valid reference.
    public func sources(for reference: ImageReference) throws(CrispError) -> [PullSource] {
        guard let rule = rule(for: reference) else { return [PullSource(reference: reference)] }
        if rule.blocked {
            throw CrispError(.permissionDenied,
                             "pulling \(reference) is blocked by the registries.conf [[registry]] rule with prefix \"\(rule.prefix)\"")
        }
        var out: [PullSource] = []
        for m in rule.mirrors {
            switch m.pullFromMirror {
            case .digestOnly where reference.digest == nil: continue
            case .tagOnly where reference.digest != nil: continue
            default: break
            }
            out.append(PullSource(reference: try rewrite(reference, rule: rule, location: m.location),
                                  insecure: m.insecure, isMirror: true))
        }
        out.append(PullSource(reference: try rewrite(reference, rule: rule, location: rule.location), insecure: rule.insecure))
        return out
    }

    func rewrite(_ ref: ImageReference, rule: Registry, location: String) throws(CrispError) -> ImageReference {
        if rule.prefix.hasPrefix("*.") {
            // A wildcard rule cannot rewrite the name (containers-registries.conf(5)); a
            // mirror location then names the registry host only.
            return location == rule.prefix ? ref : ref.on(registry: location)
        }
        let name = ref.name
        let rest = name.count >= rule.prefix.count ? String(name.dropFirst(rule.prefix.count)) : ""
        let newName = location + rest
        guard newName.contains("/") else {
            throw .invalidArgument("registries.conf location \"\(location)\" rewrites \(ref) to \"\(newName)\", which has no repository")
        }
        let parsed: ImageReference
        do { parsed = try ImageReference(parsing: newName) } catch {
            throw .invalidArgument("registries.conf location \"\(location)\" rewrites \(ref) to an invalid name: \(error.message)")
        }
        return ImageReference(registry: parsed.registry, repository: parsed.repository, tag: ref.tag, digest: ref.digest,
                              isShortName: false)
    }
}
