public import CrispCore
public import CrispTestSupport
import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore

/// A tiny HTTP proxy (python3's http.server) in front of a test registry on 127.0.0.1: counts
/// requests per path (and, under `RANGE GET path`, those with a Range header), and can corrupt
/// one byte of one blob, answer 503 once, stall a blob mid-body, cut a blob's connection once
/// mid-body, or ignore Range headers. `stop()` kills it by PID and removes its dir; call it from
/// `defer`.
public final class TestProxy: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards.
    public let port: Int
    public let dir: TempDirectory
    let process: Process

    public var host: String { "127.0.0.1:\(port)" }

    static let script = #"""
import http.server, json, socket, sys, threading, urllib.request, urllib.error
upstream, port, corrupt, fail_once = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
stall, cut_once, ignore_range, missing = sys.argv[5], sys.argv[6], sys.argv[7] == "1", sys.argv[8]
forever = threading.Event()
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
            if self.headers.get("Range"):
                counts["RANGE " + key] = counts.get("RANGE " + key, 0) + 1
        if missing and self.path.split("?")[0].endswith("/blobs/" + missing):
            body = b"blob unknown"
            self.send_response(404); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        if fail_once and first and self.path.split("?")[0].endswith("/blobs/" + fail_once):
            body = b"temporarily unavailable"
            self.send_response(503); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body); return
        req = urllib.request.Request("http://" + upstream + self.path, method=method)
        for k in ("Accept", "Authorization", "User-Agent") + (() if ignore_range else ("Range",)):
            if self.headers.get(k): req.add_header(k, self.headers.get(k))
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a): return None
        try:
            resp = urllib.request.build_opener(NoRedirect).open(req)
        except urllib.error.HTTPError as e:
            resp = e
        data = resp.read()
        if corrupt and self.path.split("?")[0].endswith("/blobs/" + corrupt) and len(data) > 0:
            data = bytearray(data); data[len(data) // 2] ^= 0xFF; data = bytes(data)
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(data))); self.end_headers()
        if method == "HEAD": return
        if stall and self.path.split("?")[0].endswith("/blobs/" + stall):
            self.wfile.write(data[:len(data) // 2]); self.wfile.flush()
            forever.wait()
        if cut_once and first and self.path.split("?")[0].endswith("/blobs/" + cut_once):
            self.wfile.write(data[:len(data) // 2]); self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR); self.close_connection = True
            return
        self.wfile.write(data)
    def do_GET(self): self.handle_one("GET")
    def do_HEAD(self): self.handle_one("HEAD")
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""#

    /// Starts a proxy to `upstream` (`127.0.0.1:PORT`); `corrupt` names a blob digest whose
    /// body gets one byte flipped; the first request for blob `failOnce` gets HTTP 503; blob
    /// `stall` gets its headers and half its body, then nothing more; the first request for blob
    /// `cutOnce` gets half its body and then a closed connection; `ignoreRange` drops Range
    /// headers (whole blobs with HTTP 200, as a server without range support answers); blob
    /// `missing` gets HTTP 404.
    public init(upstream: String, corrupt: CrispCore.Digest? = nil, failOnce: CrispCore.Digest? = nil,
                stall: CrispCore.Digest? = nil, cutOnce: CrispCore.Digest? = nil, ignoreRange: Bool = false,
                missing: CrispCore.Digest? = nil) async throws {
        dir = try TempDirectory("crisp-proxy")
        do {
            port = try freePort()
            try Self.script.write(toFile: dir.sub("proxy.py"), atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", dir.sub("proxy.py"), upstream, "\(port)", corrupt?.description ?? "", failOnce?.description ?? "",
                           stall?.description ?? "", cutOnce?.description ?? "", ignoreRange ? "1" : "0",
                           missing?.description ?? ""]
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
