import CrispCore
import CrispOS
@testable import CrispStreaming
import Foundation
import Logging
import Testing

/// The streaming server over HTTPS, with certificates made by openssl for each test.
@Suite struct StreamTLSTests {
    /// A CA and a server certificate for 127.0.0.1 signed by it, in `dir` with `prefix`.
    static func makeCertificates(in dir: String, prefix: String) async throws {
        func openssl(_ args: [String]) async throws {
            let out = try await Spawn.run(Spawn.Options(path: "/usr/bin/openssl", arguments: args))
            guard out.status == 0 else { throw CrispError.internal("openssl \(args.first ?? "") failed: \(out.stderrText)") }
        }
        let p = dir + "/" + prefix
        try await openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=crisp-test-ca",
                           "-keyout", p + "ca.key", "-out", p + "ca.pem"])
        try await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", p + "server.key", "-out", p + "server.csr"])
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: p + "ext.cnf", atomically: true, encoding: .utf8)
        try await openssl(["x509", "-req", "-in", p + "server.csr", "-CA", p + "ca.pem", "-CAkey", p + "ca.key", "-CAcreateserial",
                           "-days", "1", "-extfile", p + "ext.cnf", "-out", p + "server.pem"])
    }

    @Test func execOverHTTPSAndACertificateRenewedWithoutARestart() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else {
            print("skipped: openssl is not installed")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("crisp-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await Self.makeCertificates(in: dir, prefix: "a-")
        try await Self.makeCertificates(in: dir, prefix: "b-")
        let cert = dir + "/server.pem", key = dir + "/server.key"
        try FileManager.default.copyItem(atPath: dir + "/a-server.pem", toPath: cert)
        try FileManager.default.copyItem(atPath: dir + "/a-server.key", toPath: key)

        let backend = FakeStreamingBackend()
        let server = StreamingServer(options: .init(tls: StreamTLSOptions(certificatePath: cert, keyPath: key)),
                                     backend: backend, logger: Logger(label: "test"))
        let base = try await server.start()
        defer { Task { await server.stop() } }
        #expect(base.hasPrefix("https://"))
        let target = StreamTarget.exec(ExecRequest(containerID: "c1", command: ["echo tls"], tty: false, stdin: false, stdout: true, stderr: true))

        for transport in StreamTransportKind.allCases {
            let c = try await StreamClient.remoteCommand(url: server.url(for: target), transport: transport, streams: .init(stdin: false),
                                                         tls: StreamClientTLS(caPath: dir + "/a-ca.pem"))
            let r = await c.collect()
            #expect(String(decoding: r.stdout, as: UTF8.self) == "tls\n")
            #expect(r.outcome.succeeded)
        }
        // Plain HTTP to the HTTPS port is not a streaming session.
        let plain = server.url(for: target).replacingOccurrences(of: "https://", with: "http://")
        await #expect(throws: (any Error).self) {
            _ = try await StreamClient.remoteCommand(url: plain, transport: .spdy, streams: .init(stdin: false))
        }

        // Renew: the next connection gets the new certificate, trusted through the new CA only.
        try FileManager.default.removeItem(atPath: cert)
        try FileManager.default.removeItem(atPath: key)
        try FileManager.default.copyItem(atPath: dir + "/b-server.key", toPath: key)
        try FileManager.default.copyItem(atPath: dir + "/b-server.pem", toPath: cert)
        await #expect(throws: (any Error).self) {
            _ = try await StreamClient.remoteCommand(url: server.url(for: target), transport: .spdy, streams: .init(stdin: false),
                                                     tls: StreamClientTLS(caPath: dir + "/a-ca.pem"))
        }
        let renewed = try await StreamClient.remoteCommand(url: server.url(for: target), transport: .spdy, streams: .init(stdin: false),
                                                           tls: StreamClientTLS(caPath: dir + "/b-ca.pem"))
        #expect(String(decoding: await renewed.collect().stdout, as: UTF8.self) == "tls\n")
    }
}
