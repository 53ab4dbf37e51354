public import CrispCore
import Foundation

/// containers-policy.json(5): which images may be pulled. Only the `docker` transport's scopes
/// are consulted (crisp pulls from registries only). Supported requirement types:
/// `insecureAcceptAnything` and `reject`; any other type makes the policy fail to load, so
/// that a signature requirement is never silently ignored.
public struct SignaturePolicy: Sendable, Equatable {
    public enum Requirement: String, Sendable, Equatable {
        case insecureAcceptAnything, reject
    }

    public var defaultRequirements: [Requirement]
    /// Scope (`host[:port][/path][:tag|@digest]`, `*.domain`, or `""` for the transport default)
    /// → requirements, for the `docker` transport.
    public var dockerScopes: [String: [Requirement]]

    public init(defaultRequirements: [Requirement] = [.insecureAcceptAnything], dockerScopes: [String: [Requirement]] = [:]) {
        self.defaultRequirements = defaultRequirements
        self.dockerScopes = dockerScopes
    }

    struct File: Decodable {
        struct Req: Decodable { var type: String }
        var `default`: [Req]?
        var transports: [String: [String: [Req]]]?
    }

    /// Loads the policy file. Throws `.invalidArgument` for malformed JSON or a missing `default`,
    /// `.unimplemented` for requirement types crisp does not enforce (naming type and scope).
    public static func load(path: String) throws(CrispError) -> SignaturePolicy {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .failedPrecondition("cannot read signature policy \(path)")
        }
        return try parse(Array(data), source: path)
    }

    public static func parse(_ bytes: [UInt8], source: String) throws(CrispError) -> SignaturePolicy {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: Data(bytes)) } catch {
            throw .invalidArgument("signature policy \(source) is not valid JSON of containers-policy.json(5)")
        }
        guard let def = file.default, !def.isEmpty else {
            throw .invalidArgument("signature policy \(source) has no \"default\" requirements")
        }
        func reqs(_ list: [File.Req], scope: String) throws(CrispError) -> [Requirement] {
            var out: [Requirement] = []
            for r in list {
                guard let req = Requirement(rawValue: r.type) else {
                    throw CrispError(.unimplemented, "signature policy \(source): requirement type \"\(r.type)\" (\(scope)) is not supported by crisp; supported: insecureAcceptAnything, reject")
                }
                out.append(req)
            }
            return out
        }
        var policy = SignaturePolicy(defaultRequirements: try reqs(def, scope: "default"))
        for (transport, scopes) in file.transports ?? [:] {
            for (scope, list) in scopes {
                let parsed = try reqs(list, scope: "transport \(transport) scope \"\(scope)\"")
                if transport == "docker" { policy.dockerScopes[scope] = parsed }
            }
        }
        return policy
    }

    /// Checks a pull of `reference` (the name actually pulled, after registries.conf rewrites
    /// are not applied: policy scopes name what the user asked for). Throws `.permissionDenied`
    /// naming the scope that rejects it.
    public func check(_ reference: ImageReference) throws(CrispError) {
        let (scope, reqs) = requirements(for: reference)
        if reqs.contains(.reject) {
            throw CrispError(.permissionDenied, "pulling \(reference) is rejected by the signature policy (\(scope))")
        }
    }

    /// The most specific matching scope: full reference, repository, each parent namespace,
    /// host, wildcard domains, transport default, global default.
    func requirements(for r: ImageReference) -> (String, [Requirement]) {
        var candidates = [r.description, r.name]
        var parts = r.repository.split(separator: "/").map(String.init)
        while parts.count > 1 {
            parts.removeLast()
            candidates.append(r.registry + "/" + parts.joined(separator: "/"))
        }
        candidates.append(r.registry)
        let host = String(r.registry.split(separator: ":").first ?? "")
        var labels = host.split(separator: ".").map(String.init)
        while labels.count > 1 {
            labels.removeFirst()
            candidates.append("*." + labels.joined(separator: "."))
        }
        for c in candidates {
            if let reqs = dockerScopes[c] { return ("docker scope \"\(c)\"", reqs) }
        }
        if let reqs = dockerScopes[""] { return ("docker transport default", reqs) }
        return ("default", defaultRequirements)
    }
}
