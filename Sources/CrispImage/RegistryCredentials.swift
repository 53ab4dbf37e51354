public import CrispCore
import Foundation

/// Credentials for one registry. `description` never shows a secret.
public struct RegistryCredentials: Sendable, Equatable, CustomStringConvertible {
    public var username: String?
    public var password: String?
    /// An OAuth2 refresh token, exchanged at the token endpoint for access tokens.
    public var identityToken: String?
    /// A bearer token sent to the registry as it is.
    public var registryToken: String?

    public init(username: String? = nil, password: String? = nil, identityToken: String? = nil, registryToken: String? = nil) {
        self.username = username
        self.password = password
        self.identityToken = identityToken
        self.registryToken = registryToken
    }

    /// From the CRI AuthConfig fields: `auth` (base64 of `user:password`) is used when username
    /// and password are empty. Nil when every field is empty.
    public init?(username: String, password: String, auth: String, identityToken: String, registryToken: String) throws(CrispError) {
        var u = username, p = password
        if u.isEmpty && p.isEmpty && !auth.isEmpty {
            (u, p) = try Self.decodeAuth(auth)
        }
        if u.isEmpty && p.isEmpty && identityToken.isEmpty && registryToken.isEmpty { return nil }
        self.init(username: u.isEmpty ? nil : u, password: p.isEmpty ? nil : p,
                  identityToken: identityToken.isEmpty ? nil : identityToken,
                  registryToken: registryToken.isEmpty ? nil : registryToken)
    }

    static func decodeAuth(_ auth: String) throws(CrispError) -> (String, String) {
        guard let data = Data(base64Encoded: auth), let s = String(data: data, encoding: .utf8),
              let colon = s.firstIndex(of: ":") else {
            throw .invalidArgument("registry auth value is not base64 of \"user:password\"")
        }
        return (String(s[..<colon]), String(s[s.index(after: colon)...]))
    }

    public var description: String {
        var parts: [String] = []
        if let username { parts.append("user \(username)") }
        if password != nil { parts.append("password <redacted>") }
        if identityToken != nil { parts.append("identity token <redacted>") }
        if registryToken != nil { parts.append("registry token <redacted>") }
        return parts.isEmpty ? "anonymous" : parts.joined(separator: ", ")
    }
}

/// A containers-auth.json(5) / Docker config.json file: `{"auths": {"KEY": {"auth": …}}}` where
/// KEY is `host[:port]`, `host[:port]/namespace…`, or a legacy `https://host/v1/` URL.
public struct AuthFile: Sendable, Equatable {
    public var entries: [String: RegistryCredentials]

    public init(entries: [String: RegistryCredentials] = [:]) { self.entries = entries }

    struct File: Decodable {
        struct Entry: Decodable {
            var auth: String?
            var username: String?
            var password: String?
            var identitytoken: String?
            var registrytoken: String?
        }
        var auths: [String: Entry]?
    }

    /// Loads `path`; a missing file is an empty auth file. Errors name the file, never its contents.
    public static func load(path: String) throws(CrispError) -> AuthFile {
        guard FileManager.default.fileExists(atPath: path) else { return AuthFile() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .permissionDenied("cannot read auth file \(path)")
        }
        return try parse(data, source: path)
    }

    static func parse(_ data: Data, source: String) throws(CrispError) -> AuthFile {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw .invalidArgument("auth file \(source) is not valid auth.json (want {\"auths\": {…}})")
        }
        var out = AuthFile()
        for (key, e) in file.auths ?? [:] {
            var u = e.username ?? "", p = e.password ?? ""
            if let auth = e.auth, !auth.isEmpty {
                do { (u, p) = try RegistryCredentials.decodeAuth(auth) } catch {
                    throw .invalidArgument("auth file \(source): the entry for \(key) has an invalid \"auth\" value")
                }
            }
            out.entries[normalize(key)] = RegistryCredentials(
                username: u.isEmpty ? nil : u, password: p.isEmpty ? nil : p,
                identityToken: e.identitytoken.flatMap { $0.isEmpty ? nil : $0 },
                registryToken: e.registrytoken.flatMap { $0.isEmpty ? nil : $0 })
        }
        return out
    }

    static func normalize(_ key: String) -> String {
        var k = key
        for scheme in ["https://", "http://"] where k.hasPrefix(scheme) { k = String(k.dropFirst(scheme.count)) }
        if k.hasPrefix("index.docker.io/v1") || k.hasPrefix("registry-1.docker.io") || k.hasPrefix("index.docker.io") {
            return "docker.io"
        }
        while k.hasSuffix("/") { k.removeLast() }
        return k
    }

    /// The most specific entry for the reference: `host/ns/repo`, then `host/ns`, …, then `host`.
    public func credentials(for reference: ImageReference) -> RegistryCredentials? {
        var components = reference.repository.split(separator: "/").map(String.init)
        while !components.isEmpty {
            if let c = entries[reference.registry + "/" + components.joined(separator: "/")] { return c }
            components.removeLast()
        }
        return entries[reference.registry]
    }
}

extension CrispError {
    static func permissionDenied(_ m: String) -> CrispError { CrispError(.permissionDenied, m) }
}
