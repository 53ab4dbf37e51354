import CrispCore
public import Logging
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// Options of the registry client.
public struct RegistryClientOptions: Sendable {
    /// Per-registry TLS material: `DIR/HOST[:PORT]/*.crt` (CAs), `*.cert` + `*.key` (client).
    public var certsDirectory = "/etc/containers/certs.d"
    /// Attempts after the first on 5xx/429 answers and dropped or refused connections; also the
    /// number of times a blob whose connection dropped mid-body is resumed with a Range request.
    public var retries = 3
    /// First backoff; doubled per retry.
    public var retryBackoff: Duration = .milliseconds(250)
    /// A response that receives nothing for this long fails: a blob body then fails with
    /// `.deadlineExceeded` (not retried); a stalled wait for response headers counts as a
    /// dropped connection (retried).
    public var progressTimeout: Duration = .seconds(60)
    public var connectTimeout: Duration = .seconds(15)
    public var userAgent = "crisp/\(CrispVersion.string)"

    public init() {}
}

/// A client of the distribution HTTP API v2 (`/v2/` ping, manifests, blobs) with Bearer-token
/// (cached per registry, scope and credentials until expiry) and Basic authentication,
/// per-registry TLS from certs.d, plain HTTP or unverified TLS only for insecure endpoints, and
/// retries with exponential backoff. Secrets never appear in its errors or logs.
///
/// Safe to use concurrently; call `shutdown()` once when done.
public final class RegistryClient: Sendable {
    let http: HTTPClient
    let options: RegistryClientOptions
    let logger: Logger
    let state = Mutex(State())

    struct State {
        var endpoints: [EndpointKey: Endpoint] = [:]
        var tokens: [TokenKey: Token] = [:]
    }

    struct EndpointKey: Hashable { var host: String; var insecure: Bool }
    struct Endpoint: Sendable { var scheme: String; var challenge: Challenge? }
    struct TokenKey: Hashable { var host: String; var scope: String; var identity: String }
    struct Token: Sendable { var value: String; var expires: ContinuousClock.Instant }

    public init(options: RegistryClientOptions = RegistryClientOptions(), logger: Logger) {
        self.options = options
        self.logger = logger
        var config = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 10, allowCycles: false),
            timeout: .init(connect: Self.timeAmount(options.connectTimeout), read: Self.timeAmount(options.progressTimeout)))
        config.httpVersion = .http1Only
        // Our own loop retries with backoff and tries the next endpoint; the pool's retries
        // would hold a refused or non-TLS endpoint until the connect timeout.
        config.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    public func shutdown() async throws { try await http.shutdown() }

    static func timeAmount(_ d: Duration) -> TimeAmount {
        .milliseconds(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    // MARK: requests

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: HTTPClientResponse.Body
    }

    /// Sends a GET for `path` on `source`'s registry with authentication and retries; returns a
    /// 2xx response (its body not yet read). 404 → `.notFound`, 401/403 after authenticating →
    /// `.permissionDenied`, exhausted retries → `.unavailable`.
    /// `range` asks for the bytes from that offset on (`Range: bytes=N-`); the caller checks
    /// whether the answer is the 206 it asked for.
    func get(_ path: String, on source: PullSource, accept: [String] = [], credentials: RegistryCredentials?,
             what: String, range: Int64? = nil) async throws -> Response {
        let host = source.reference.registry
        let scope = "repository:\(source.reference.repository):pull"
        var attempt = 0
        var reauthenticated = false
        var lastError = ""
        while true {
            try Task.checkCancellation()
            do {
                let ep: Endpoint
                do { ep = try await endpoint(host: host, insecure: source.insecure) } catch let e as CrispError where e.code == .unavailable {
                    throw Retryable(message: e.message)
                }
                var req = HTTPClientRequest(url: "\(ep.scheme)://\(host)\(path)")
                req.tlsConfiguration = try tlsConfiguration(host: host, insecure: source.insecure)
                req.headers.add(name: "User-Agent", value: options.userAgent)
                if !accept.isEmpty { req.headers.add(name: "Accept", value: accept.joined(separator: ", ")) }
                if let range { req.headers.add(name: "Range", value: "bytes=\(range)-") }
                if let auth = try await authorization(challenge: ep.challenge, host: host, scope: scope,
                                                      credentials: credentials, insecure: source.insecure) {
                    req.headers.add(name: "Authorization", value: auth)
                }
                let r = try await http.execute(req, deadline: .now() + .hours(6), logger: nil)
                let code = Int(r.status.code)
                switch code {
                case 200..<300:
                    return Response(status: code, headers: r.headers, body: r.body)
                case 401, 403:
                    _ = try? await r.body.collect(upTo: 64 << 10)
                    if !reauthenticated, code == 401, let c = r.headers.first(name: "WWW-Authenticate").flatMap(Challenge.parse) {
                        reauthenticated = true
                        forgetToken(host: host, scope: scope, credentials: credentials)
                        setChallenge(c, host: host, insecure: source.insecure)
                        continue
                    }
                    throw CrispError(.permissionDenied, "\(host) refused access to \(what) (HTTP \(code)); "
                                     + (credentials == nil ? "no credentials were given" : "check the credentials"))
                case 404:
                    _ = try? await r.body.collect(upTo: 64 << 10)
                    throw CrispError.notFound("\(what) not found on \(host) (HTTP 404)")
                case 429, 500...599:
                    _ = try? await r.body.collect(upTo: 64 << 10)
                    lastError = "HTTP \(code)"
                default:
                    _ = try? await r.body.collect(upTo: 64 << 10)
                    throw CrispError(.internal, "\(host) answered HTTP \(code) for \(what)")
                }
            } catch let e as CrispError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch let e as Retryable {
                lastError = e.message
            } catch {
                lastError = Self.describe(error)
                forgetEndpoint(host: host, insecure: source.insecure)
            }
            guard attempt < options.retries else {
                throw CrispError(.unavailable, "cannot fetch \(what) from \(host) after \(attempt + 1) attempts: \(lastError)")
            }
            try await Task.sleep(for: options.retryBackoff * (1 << attempt))
            attempt += 1
        }
    }

    struct Retryable: Error { var message: String }

    /// Reads a whole small body (manifests, configs, tokens), failing past `limit` bytes.
    static func collect(_ body: HTTPClientResponse.Body, limit: Int, what: String) async throws -> [UInt8] {
        do {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch let e as NIOTooManyBytesError {
            throw CrispError(.invalidArgument, "\(what) is larger than \(limit) bytes", cause: e)
        }
    }

    /// A short, secret-free description of a transport error.
    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError, e == .readTimeout { return "no data within the progress timeout" }
        if let e = error as? HTTPClientError { return "\(e)" }
        if let e = error as? NIOSSLError { return "TLS: \(e)" }
        if let e = error as? BoringSSLError { return "TLS: \(e)" }
        if let e = error as? IOError { return e.description }
        return String(describing: type(of: error)) + ": \(error)"
    }
}
