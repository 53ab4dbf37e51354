import AsyncHTTPClient
import CrispCore
import Foundation
import NIOCore
import NIOHTTP1
import Logging
import Synchronization

/// A `WWW-Authenticate` challenge.
enum Challenge: Sendable, Equatable {
    case basic
    case bearer(realm: String, service: String?)

    /// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
    static func parse(_ header: String) -> Challenge? {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard let space = trimmed.firstIndex(of: " ") ?? (trimmed.isEmpty ? nil : trimmed.endIndex) else { return nil }
        let scheme = trimmed[..<space].lowercased()
        var params: [String: String] = [:]
        var rest = Substring(trimmed[space...])
        while let eq = rest.firstIndex(of: "=") {
            let key = rest[..<eq].trimmingCharacters(in: CharacterSet(charactersIn: " ,")).lowercased()
            rest = rest[rest.index(after: eq)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else { value.append(c) }
                }
            } else {
                let end = rest.firstIndex(of: ",") ?? rest.endIndex
                value = String(rest[..<end]).trimmingCharacters(in: .whitespaces)
                rest = rest[end...]
            }
            params[key] = value
        }
        switch scheme {
        case "basic": return .basic
        case "bearer":
            guard let realm = params["realm"], !realm.isEmpty else { return nil }
            return .bearer(realm: realm, service: params["service"])
        default: return nil
        }
    }
}

extension RegistryClient {
    /// Pings `/v2/` once per registry (cached): HTTPS first; plain HTTP only for an insecure
    /// endpoint whose HTTPS attempt failed. Records the auth challenge.
    func endpoint(host: String, insecure: Bool) async throws -> Endpoint {
        let key = EndpointKey(host: host, insecure: insecure)
        if let e = state.withLock({ $0.endpoints[key] }) { return e }
        var failures: [String] = []
        for scheme in insecure ? ["https", "http"] : ["https"] {
            var req = HTTPClientRequest(url: "\(scheme)://\(host)/v2/")
            req.tlsConfiguration = try tlsConfiguration(host: host, insecure: insecure)
            req.headers.add(name: "User-Agent", value: options.userAgent)
            do {
                let r = try await http.execute(req, deadline: .now() + .seconds(30), logger: nil)
                _ = try? await r.body.collect(upTo: 64 << 10)
                let challenge = r.headers.first(name: "WWW-Authenticate").flatMap(Challenge.parse)
                guard r.status.code < 300 || r.status.code == 401 else {
                    failures.append("\(scheme): HTTP \(r.status.code) for /v2/")
                    continue
                }
                let ep = Endpoint(scheme: scheme, challenge: challenge)
                state.withLock { $0.endpoints[key] = ep }
                logger.debug("registry endpoint", metadata: ["host": "\(host)", "scheme": "\(scheme)",
                                                            "auth": "\(challenge.map { "\($0)".prefix(6) } ?? "none")"])
                return ep
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                failures.append("\(scheme): \(Self.describe(error))")
            }
        }
        throw CrispError(.unavailable, "cannot reach registry \(host) (\(failures.joined(separator: "; ")))"
                         + (insecure ? "" : "; plain HTTP is used only for registries marked insecure"))
    }

    func forgetEndpoint(host: String, insecure: Bool) {
        _ = state.withLock { $0.endpoints.removeValue(forKey: EndpointKey(host: host, insecure: insecure)) }
    }

    func setChallenge(_ c: Challenge, host: String, insecure: Bool) {
        state.withLock { s in
            let key = EndpointKey(host: host, insecure: insecure)
            if var e = s.endpoints[key] { e.challenge = c; s.endpoints[key] = e }
        }
    }

    static func identity(_ c: RegistryCredentials?) -> String {
        guard let c else { return "" }
        // Tokens are cached per identity; the key holds only the user name and a hash marker.
        return (c.username ?? "") + "#" + String((c.password ?? c.identityToken ?? "").hashValue)
    }

    func forgetToken(host: String, scope: String, credentials: RegistryCredentials?) {
        _ = state.withLock { $0.tokens.removeValue(forKey: TokenKey(host: host, scope: scope, identity: Self.identity(credentials))) }
    }

    /// The `Authorization` header value for a request, fetching a bearer token when needed.
    func authorization(challenge: Challenge?, host: String, scope: String, credentials: RegistryCredentials?,
                       insecure: Bool) async throws -> String? {
        if let t = credentials?.registryToken { return "Bearer \(t)" }
        switch challenge {
        case nil: return nil
        case .basic:
            guard let c = credentials, let u = c.username else { return nil }
            return "Basic " + Data("\(u):\(c.password ?? "")".utf8).base64EncodedString()
        case .bearer(let realm, let service):
            let key = TokenKey(host: host, scope: scope, identity: Self.identity(credentials))
            let now = ContinuousClock.now
            if let t = state.withLock({ $0.tokens[key] }), t.expires > now { return "Bearer \(t.value)" }
            let token = try await fetchToken(realm: realm, service: service, scope: scope, credentials: credentials,
                                             host: host, insecure: insecure)
            state.withLock { $0.tokens[key] = token }
            return "Bearer \(token.value)"
        }
    }

    struct TokenResponse: Decodable {
        var token: String?
        var accessToken: String?
        var expiresIn: Int?
        enum CodingKeys: String, CodingKey { case token, accessToken = "access_token", expiresIn = "expires_in" }
    }

    /// Asks the token server for a pull token: GET with Basic credentials (or anonymously), or
    /// the OAuth2 refresh-token POST when an identity token is given.
    func fetchToken(realm: String, service: String?, scope: String, credentials: RegistryCredentials?,
                    host: String, insecure: Bool) async throws -> Token {
        guard var url = URLComponents(string: realm), let realmHost = url.host else {
            throw CrispError(.invalidArgument, "registry \(host) names an invalid token realm")
        }
        var req: HTTPClientRequest
        if let refresh = credentials?.identityToken {
            req = HTTPClientRequest(url: realm)
            req.method = .POST
            var form = URLComponents()
            form.queryItems = [URLQueryItem(name: "grant_type", value: "refresh_token"),
                               URLQueryItem(name: "refresh_token", value: refresh),
                               URLQueryItem(name: "client_id", value: "crisp"),
                               URLQueryItem(name: "scope", value: scope)]
                + (service.map { [URLQueryItem(name: "service", value: $0)] } ?? [])
            req.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            req.body = .bytes(ByteBuffer(string: form.percentEncodedQuery ?? ""))
        } else {
            url.queryItems = (url.queryItems ?? []) + [URLQueryItem(name: "scope", value: scope)]
                + (service.map { [URLQueryItem(name: "service", value: $0)] } ?? [])
            req = HTTPClientRequest(url: url.string ?? realm)
            if let c = credentials, let u = c.username {
                req.headers.add(name: "Authorization", value: "Basic " + Data("\(u):\(c.password ?? "")".utf8).base64EncodedString())
            }
        }
        req.headers.add(name: "User-Agent", value: options.userAgent)
        let port = url.port.map { ":\($0)" } ?? ""
        req.tlsConfiguration = try tlsConfiguration(host: realmHost + port, insecure: insecure)
        let r: HTTPClientResponse
        do { r = try await http.execute(req, deadline: .now() + .seconds(60), logger: nil) } catch {
            throw CrispError(.unavailable, "cannot reach the token server of \(host) at \(realmHost): \(Self.describe(error))")
        }
        let body = try await Self.collect(r.body, limit: 1 << 20, what: "token response of \(host)")
        guard r.status.code == 200 else {
            let code: CrispError.Code = r.status.code == 401 || r.status.code == 403 ? .permissionDenied : .unavailable
            throw CrispError(code, "the token server of \(host) refused a token for \(scope) (HTTP \(r.status.code))")
        }
        guard let t = try? JSONDecoder().decode(TokenResponse.self, from: Data(body)), let value = t.token ?? t.accessToken,
              !value.isEmpty else {
            throw CrispError(.unavailable, "the token server of \(host) sent no token")
        }
        let lifetime = max(60, t.expiresIn ?? 60)
        // Renew a little early so that a token does not expire between check and use.
        return Token(value: value, expires: .now + .seconds(lifetime - 10))
    }
}
