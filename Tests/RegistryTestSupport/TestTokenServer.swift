public import CrispTestSupport
import Crypto
import Foundation
import Glibc

/// Token authentication for a test registry (`auth: token`): an ES256 key and a certificate
/// for it (the registry's root cert bundle), JWTs minted here, and a tiny python3 token server
/// on 127.0.0.1 that hands out a pull token to a client with the right Basic credentials and
/// counts its requests. `stop()` kills it by PID and removes its dir.
public final class TestTokenServer: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards.
    public let port: Int
    public let dir: TempDirectory
    public let certificate: String
    public let issuer = "crisp-test-issuer"
    public let service = "crisp-test-registry"
    let key: P256.Signing.PrivateKey
    let process: Process

    public var realm: String { "http://127.0.0.1:\(port)/token" }

    static let script = #"""
import base64, http.server, json, sys
port, user, password, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
count = {"n": 0}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/__count":
            body = json.dumps(count).encode()
            self.send_response(200)
        else:
            count["n"] += 1
            want = "Basic " + base64.b64encode((user + ":" + password).encode()).decode()
            if self.headers.get("Authorization") != want or "scope=repository" not in self.path:
                body = b'{"errors":[{"code":"UNAUTHORIZED"}]}'; self.send_response(401)
            else:
                body = json.dumps({"token": token, "expires_in": 300}).encode(); self.send_response(200)
        self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""#

    /// Starts the token server; `user`/`password` are the credentials it accepts; the token it
    /// serves grants pull and push on `repository`.
    public init(user: String, password: String, repository: String) async throws {
        dir = try TempDirectory("crisp-token")
        key = P256.Signing.PrivateKey()
        certificate = dir.sub("token.crt")
        do {
            port = try freePort()
            try key.pemRepresentation.write(toFile: dir.sub("token.key"), atomically: true, encoding: .utf8)
            try runTool("/usr/bin/openssl", ["req", "-x509", "-key", dir.sub("token.key"), "-out", certificate, "-days", "2",
                                             "-subj", "/CN=crisp test token signer"])
            try Self.script.write(toFile: dir.sub("token.py"), atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", dir.sub("token.py"), "\(port)", user, password, ""]
            process = p
        } catch {
            dir.remove()
            throw error
        }
        let token = try mint(repository: repository)
        process.arguments![5] = token
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        do {
            try process.run()
            try await waitForPort(port, process: process)
        } catch {
            stop()
            throw error
        }
    }

    /// A JWT the registry accepts: ES256, `kid` = libtrust id of the signing key.
    public func mint(repository: String, lifetime: Int = 600) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let header = #"{"alg":"ES256","typ":"JWT","kid":"\#(RegistryPusher.keyID(key.publicKey))"}"#
        let claims = #"{"iss":"\#(issuer)","sub":"crisp","aud":"\#(service)","exp":\#(now + lifetime),"nbf":\#(now - 60),"iat":\#(now),"jti":"\#(UUID().uuidString)","access":[{"type":"repository","name":"\#(repository)","actions":["pull","push"]}]}"#
        let input = RegistryPusher.b64url(Array(header.utf8)) + "." + RegistryPusher.b64url(Array(claims.utf8))
        let sig = try key.signature(for: Array(input.utf8)).rawRepresentation
        return input + "." + RegistryPusher.b64url(sig)
    }

    /// Token requests served so far.
    public func requests() throws -> Int {
        let out = try runTool("/usr/bin/curl", ["-sf", "http://127.0.0.1:\(port)/__count"])
        struct C: Decodable { var n: Int }
        return try JSONDecoder().decode(C.self, from: Data(out.utf8)).n
    }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        dir.remove()
    }
}
