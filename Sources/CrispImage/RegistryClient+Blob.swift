import AsyncHTTPClient
import CrispCore
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The cause of an `.unavailable` error when a server answered a resumed download (`Range:
/// bytes=N-`) with something other than the rest of the blob, typically the whole blob (HTTP
/// 200). The bytes already handed to the sink cannot be taken back: the caller starts the blob
/// over from its first byte.
struct RangeNotHonoured: Error, Sendable {}

/// An error thrown by a blob's sink, kept apart from transport errors so that a failing
/// consumer (a full disk, a cancelled apply) is never mistaken for a dropped connection.
private struct SinkFailure: Error { var error: any Error }

extension RegistryClient {
    /// What one streamed blob is and where it comes from, for the checks and the messages.
    struct BlobRequest {
        var digest: CrispCore.Digest
        var size: Int64?
        var limit: Int64?
        /// e.g. "blob sha256:… of host/repo".
        var what: String
        /// The registry host, or the URL (without query) of a foreign layer.
        var server: String
    }

    /// Streams a blob from the registry to `sink`, hashing it. A connection that drops after
    /// some bytes is resumed with `Range: bytes=N-` (up to `options.retries` times, with
    /// backoff); the hash simply continues. No body data for `options.progressTimeout` fails with
    /// `.deadlineExceeded` naming blob, registry and timeout. Throws (after the sink saw the
    /// bytes) when the size or digest differs, so the consumer must not commit before this
    /// returns. A server that ignores the Range request fails with `.unavailable` caused by
    /// `RangeNotHonoured`: the caller restarts the blob.
    func blob(_ digest: CrispCore.Digest, size: Int64?, on source: PullSource, credentials: RegistryCredentials?,
              limit: Int64? = nil, sink: ([UInt8]) async throws -> Void) async throws {
        let what = "blob \(digest) of \(source.reference.name)"
        let path = "/v2/\(source.reference.repository)/blobs/\(digest)"
        let request = BlobRequest(digest: digest, size: size, limit: limit, what: what, server: source.reference.registry)
        try await stream(request, sink: sink) { offset in
            try await self.get(path, on: source, credentials: credentials, what: what, range: offset > 0 ? offset : nil)
        }
    }

    /// Streams a foreign (non-distributable) layer's blob from the first of `urls` that answers,
    /// with the same size and digest checks, resumes and progress timeout as a registry blob.
    /// URLs are shown without query or credentials (they may carry signed tokens).
    func blob(_ digest: CrispCore.Digest, size: Int64, urls: [String], sink: ([UInt8]) async throws -> Void) async throws {
        var failures: [String] = []
        for url in urls {
            let shown = Self.redacted(url)
            guard let u = URL(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  u.host != nil else {
                failures.append("\(shown): not an http or https URL")
                continue
            }
            var delivered = false
            do {
                let request = BlobRequest(digest: digest, size: size, limit: nil, what: "blob \(digest)", server: shown)
                try await stream(request, sink: { chunk in
                    delivered = true
                    try await sink(chunk)
                }, open: { offset in
                    try await self.getURL(url, shown: shown, range: offset > 0 ? offset : nil)
                })
                return
            } catch let e as CrispError where !delivered {
                failures.append(e.message)
            }
        }
        throw CrispError(.unavailable, "cannot fetch blob \(digest) from its URLs: " + failures.joined(separator: "; "))
    }

    /// The download loop shared by registry and URL blobs. `open(offset)` starts a request for
    /// the bytes from `offset` on (0: the whole blob).
    func stream(_ b: BlobRequest, sink: ([UInt8]) async throws -> Void,
                open: (Int64) async throws -> Response) async throws {
        var hasher = SHA256()
        var total: Int64 = 0
        var resumes = 0
        let max = b.size ?? b.limit
        while true {
            let offset = total
            let r = try await open(offset)
            if offset > 0, r.status != 206 || Self.rangeStart(r.headers) != offset {
                throw CrispError(.unavailable, "\(b.what) from \(b.server): a request to resume at byte \(offset) was answered with HTTP \(r.status)"
                                 + (r.status == 200 ? " and the whole blob (Range not supported)" : " and an unexpected range"),
                                 cause: RangeNotHonoured())
            }
            do {
                for try await buffer in r.body {
                    // One memcpy: iterating the buffer's view is element by element in debug builds.
                    let chunk = buffer.withUnsafeReadableBytes { [UInt8]($0) }
                    total += Int64(chunk.count)
                    if let max, total > max {
                        throw CrispError(.internal, "\(b.what) from \(b.server) is longer than \(max) bytes")
                    }
                    hasher.update(data: chunk)
                    do { try await sink(chunk) } catch { throw SinkFailure(error: error) }
                }
                break
            } catch let e as SinkFailure {
                throw e.error
            } catch let e as CrispError {
                throw e
            } catch is CancellationError {
                throw CancellationError()
            } catch let e as HTTPClientError where e == .readTimeout {
                throw CrispError(.deadlineExceeded, "download of \(b.what) from \(b.server) stalled: no data for \(options.progressTimeout) "
                                 + "after \(total) bytes (progress timeout)")
            } catch {
                // Every byte arrived and only the end of the response was lost: nothing is
                // left to resume (a Range from the end would be refused); the checks decide.
                if let size = b.size, total == size { break }
                guard resumes < options.retries else {
                    throw CrispError(.unavailable, "download of \(b.what) from \(b.server) failed after \(total) bytes and \(resumes) resumed attempts: \(Self.describe(error))")
                }
                resumes += 1
                logger.info("resuming blob download", metadata: ["blob": "\(b.digest)", "server": "\(b.server)", "offset": "\(total)",
                                                                  "error": "\(Self.describe(error))"])
                try await Task.sleep(for: options.retryBackoff * (1 << (resumes - 1)))
            }
        }
        if let size = b.size, total != size {
            throw CrispError(.internal, "\(b.what) from \(b.server) has \(total) bytes, want \(size)")
        }
        let got = CrispCore.Digest(sha256Bytes: hasher.finalize())
        if got != b.digest {
            throw CrispError(.internal, "\(b.what) from \(b.server) has digest \(got): corrupted in transit or at the registry")
        }
    }

    /// One GET of a foreign layer URL (no registry authentication: such URLs are public or
    /// carry their own signature). A non-2xx answer is an error naming the URL and the status.
    func getURL(_ url: String, shown: String, range: Int64?) async throws -> Response {
        var req = HTTPClientRequest(url: url)
        req.headers.add(name: "User-Agent", value: options.userAgent)
        if let range { req.headers.add(name: "Range", value: "bytes=\(range)-") }
        let r: HTTPClientResponse
        do {
            r = try await http.execute(req, deadline: .now() + .hours(6), logger: nil)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw CrispError(.unavailable, "cannot fetch \(shown): \(Self.describe(error))")
        }
        let code = Int(r.status.code)
        guard (200..<300).contains(code) else {
            _ = try? await r.body.collect(upTo: 64 << 10)
            throw CrispError(code == 404 ? .notFound : .unavailable, "\(shown) answered HTTP \(code)")
        }
        return Response(status: code, headers: r.headers, body: r.body)
    }

    /// The first byte of a `Content-Range: bytes FIRST-LAST/SIZE` header.
    static func rangeStart(_ headers: HTTPHeaders) -> Int64? {
        guard let v = headers.first(name: "Content-Range"), v.hasPrefix("bytes ") else { return nil }
        return Int64(v.dropFirst(6).prefix { $0 != "-" })
    }

    /// A URL without user info, query or fragment, for messages and logs.
    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "(unparseable URL)" }
        c.user = nil
        c.password = nil
        c.query = nil
        c.fragment = nil
        return c.string ?? "(unparseable URL)"
    }
}
