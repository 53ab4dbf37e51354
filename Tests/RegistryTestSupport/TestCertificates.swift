import Foundation

/// A test CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI.
public struct TestCertificates: Sendable {
    public let caCertificate: String
    public let serverCertificate: String
    public let serverKey: String

    /// Writes `ca.crt`, `ca.key`, `server.crt`, `server.key` into `dir`.
    public init(in dir: String) throws {
        caCertificate = dir + "/ca.crt"
        serverCertificate = dir + "/server.crt"
        serverKey = dir + "/server.key"
        let ossl = "/usr/bin/openssl"
        try runTool(ossl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                           "-keyout", dir + "/ca.key", "-out", caCertificate, "-days", "2", "-subj", "/CN=crisp test CA"])
        try runTool(ossl, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                           "-keyout", serverKey, "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: dir + "/ext.cnf", atomically: true, encoding: .utf8)
        try runTool(ossl, ["x509", "-req", "-in", dir + "/server.csr", "-CA", caCertificate, "-CAkey", dir + "/ca.key",
                           "-CAcreateserial", "-out", serverCertificate, "-days", "2", "-extfile", dir + "/ext.cnf"])
    }
}
