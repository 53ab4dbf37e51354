public import CrispCore
public import CrispTestSupport
import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore

/// A tiny HTTP proxy (python3's http.server) in front of a test registry on 127.0.0.1: counts
/// requests per path and can corrupt one byte of one blob. `stop()` kills it by PID and removes
/// its dir; call it from `defer`.
public final class TestProxy: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards.
    public let port: Int
    public let dir: TempDirectory
    let process: Process

    public var host: String { "127.0.0.1:\(port)" }

    static let script = #"""
import http.server, json, sys, threading, urllib.request, urllib.error
upstream, port, corrupt, fail_once = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
counts = {}
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_one(self, method):
        if self.path == "/__counts":
            with lock: body = json.dumps(counts).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        with lock:
            key = method + " " + self.path
            counts[key] = counts.get(key, 0) + 1
            first = counts[key] == 1
        if fail_once and first and self.path.endswith("/blobs/" + fail_once):
            body = b"temporarily unavailable"
            self.send_response(503); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        req = urllib.request.Request("http://" + upstream + self.path, method=method)
        for k in ("Accept", "Authorization", "User-Agent"):
            if self.headers.get(k): req.add_header(k, self.headers.get(k))
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a): return None
        try:
            resp = urllib.request.build_opener(NoRedirect).open(req)
        except urllib.error.HTTPError as e:
            resp = e
        data = resp.read()
        if corrupt and self.path.endswith("/blobs/" + corrupt) and len(data) > 0:
            data = bytearray(data); data[len(data) // 2] ^= 0xFF; data = bytes(data)
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(data))); self.end_headers()
        if method != "HEAD": self.wfile.write(data)
    def do_GET(self): self.handle_one("GET")
    def do_HEAD(self): self.handle_one("HEAD")
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""#

    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`); `corrupt` names a blob digest whose
    /// body gets one byte flipped; the first request for blob `failOnce` gets HTTP 503.
    public init(upstream: String, corrupt: CrispCore.Digest? = nil, failOnce: CrispCore.Digest? = nil) async throws {
        dir = try TempDirectory("crisp-proxy")
        do {
            port = try freePort()
            try Self.script.write(toFile: dir.sub("proxy.py"), atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", dir.sub("proxy.py"), upstream, "\(port)", corrupt?.description ?? "", failOnce?.description ?? ""]
            p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            p.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try p.run()
            process = p
        } catch {
            dir.remove()
            throw error
        }
        do { try await waitForPort(port, process: process) } catch {
            stop()
            throw error
        }
    }

    /// Requests seen so far, by `METHOD path`.
    public func counts() async throws -> [String: Int] {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() }
        let r = try await client.execute(HTTPClientRequest(url: "http://\(host)/__counts"), timeout: .seconds(10))
        var body = try await r.body.collect(upTo: 1 << 20)
        let data = Data(body.readBytes(length: body.readableBytes) ?? [])
        return try JSONDecoder().decode([String: Int].self, from: data)
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        dir.remove()
    }
}
