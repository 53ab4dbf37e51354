import CrispCore
import Glibc
import NIOSSL
import Synchronization

/// The streaming server's TLS settings. The files are read again when one of them changes (by
/// modification time and size, looked at for each new connection), so renewing a certificate
/// needs no restart; a renewal that does not load keeps the previous context (for as long as the
/// broken files stay).
public struct StreamTLSOptions: Sendable, Equatable {
    public var certificatePath: String
    public var keyPath: String
    /// When set, clients must present a certificate signed by one of these CAs.
    public var clientCAPath: String?

    public init(certificatePath: String, keyPath: String, clientCAPath: String? = nil) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
    }
}

final class StreamTLSContexts: Sendable {
    let options: StreamTLSOptions
    private let cache = Mutex<(stamp: [Int64], context: NIOSSLContext?)>(([], nil))

    init(_ options: StreamTLSOptions) throws(CrispError) {
        self.options = options
        _ = try current()
    }

    private var paths: [String] { [options.certificatePath, options.keyPath] + (options.clientCAPath.map { [$0] } ?? []) }

    private func stamp() -> [Int64] {
        paths.flatMap { p -> [Int64] in
            var st = stat()
            guard stat(p, &st) == 0 else { return [-1, -1] }
            return [Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec), Int64(st.st_size)]
        }
    }

    /// The context for a new connection: the cached one unless a file changed.
    func current() throws(CrispError) -> NIOSSLContext {
        let now = stamp()
        if let c = cache.withLock({ $0.stamp == now ? $0.context : nil }) { return c }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(options.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: options.keyPath, format: .pem)
            var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            if let ca = options.clientCAPath {
                config.trustRoots = .file(ca)
                config.certificateVerification = .noHostnameVerification
            }
            let context = try NIOSSLContext(configuration: config)
            cache.withLock { $0 = (now, context) }
            return context
        } catch {
            if let old = cache.withLock({ $0.context }) { return old }
            throw CrispError(.invalidArgument, "cannot load the streaming TLS certificate \(options.certificatePath) / key \(options.keyPath): \(error)")
        }
    }
}

/// How crisp's client checks a streaming server over https.
public struct StreamClientTLS: Sendable {
    /// PEM CA bundle to trust; nil trusts the system's roots.
    public var caPath: String?
    /// Skip verification (what critest and crictl do for the runtime's own URLs).
    public var insecure: Bool
    /// Client certificate and key, for a server with `stream_tls_ca`.
    public var certificatePath: String?
    public var keyPath: String?

    public init(caPath: String? = nil, insecure: Bool = false, certificatePath: String? = nil, keyPath: String? = nil) {
        self.caPath = caPath
        self.insecure = insecure
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }

    func context() throws -> NIOSSLContext {
        var config = TLSConfiguration.makeClientConfiguration()
        if let caPath { config.trustRoots = .file(caPath) }
        if insecure { config.certificateVerification = .none } else { config.certificateVerification = .noHostnameVerification }
        if let certificatePath, let keyPath {
            config.certificateChain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) }
            config.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
        }
        return try NIOSSLContext(configuration: config)
    }
}
