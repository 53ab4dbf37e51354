import CrispCore
import Foundation
import NIOSSL

extension RegistryClient {
    /// TLS for one registry: system roots plus `certs.d/HOST[:PORT]/*.crt`, a client
    /// certificate from `*.cert` + `*.key`; no verification for insecure endpoints.
    func tlsConfiguration(host: String, insecure: Bool) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if insecure { tls.certificateVerification = .none }
        let dir = options.certsDirectory + "/" + host
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return tls }
        for name in names.sorted() where name.hasSuffix(".crt") {
            tls.additionalTrustRoots.append(.file(dir + "/" + name))
        }
        for name in names.sorted() where name.hasSuffix(".cert") {
            let key = dir + "/" + name.dropLast(5) + ".key"
            guard FileManager.default.fileExists(atPath: key) else {
                throw CrispError(.invalidArgument, "client certificate \(dir)/\(name) has no matching key \(key)")
            }
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(dir + "/" + name).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw CrispError(.invalidArgument, "cannot load client certificate \(dir)/\(name)", cause: error)
            }
        }
        return tls
    }
}
