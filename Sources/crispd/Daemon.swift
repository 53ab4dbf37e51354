import CRIAPI
import CrispConfig
import CrispCore
import CrispRuntime
import CrispStorage
import CrispStreaming
import CrispNetwork
import CrispServer
import CrispService
import CrispOS
import CrispTransport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The composition root: configuration → services → gRPC on the unix socket, with signals.
struct Daemon {
    let config: CrispConfiguration
    let sources: ConfigSources

    func run() async throws {
        let level = KeyValueLogHandler.Level(Logger.Level(rawValue: config.logLevel) ?? .info)
        LoggingSystem.bootstrap { label in KeyValueLogHandler(label: label == "crispd" ? "" : label, sharedLevel: level) }
        let logger = Logger(label: "crispd")

        for dir in [config.root, config.runRoot] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o711])
        }
        let lock = try DaemonLock(path: config.daemonLockPath)
        // Orphans below crispd (conmon once it daemonizes) are crispd's to reap, whatever init runs.
        if let why = ChildReaper.start() {
            logger.warning("not a child subreaper: orphaned processes go to init", metadata: ["reason": "\(why)"])
        }
        try SocketPreparation.prepare(path: config.api.listen)

        var services: [any Service] = []
        if config.metrics.enableMetrics {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            services.append(MetricsServer(port: config.metrics.metricsPort, registry: registry,
                                          logger: Logger(label: "metrics")))
        }

        let live = LiveConfiguration(config)
        // The runtimes answer `features`, and crisp-pinns tries an idmapped mount, while the
        // network and storage are being opened.
        async let probed = Self.probeHandlers(config)
        async let userNamespaces = Self.probeUserNamespaces(config, logger: logger)
        let network = try makeNetwork()
        let storage = try await openStorage()
        let images = try makeImageService(storage: storage)
        var handlers = await probed
        if await userNamespaces {
            for name in handlers.keys { handlers[name]?.userNamespaces = true }
        }
        let info = RuntimeInfoService(config: live, network: network, handlers: Array(handlers.values))
        let runtime = try await makeRuntime(storage: storage, network: network, images: images.manager, live: live,
                                            handlers: handlers, logger: logger)
        let streaming = StreamingServer(
            options: .init(address: config.api.streamAddress, port: config.api.streamPort,
                           idleTimeout: .seconds(config.api.streamIdleTimeout),
                           tls: config.api.streamEnableTLS
                               ? StreamTLSOptions(certificatePath: config.api.streamTLSCert, keyPath: config.api.streamTLSKey,
                                                  clientCAPath: config.api.streamTLSCA.isEmpty ? nil : config.api.streamTLSCA)
                               : nil),
            backend: ServiceStreamingBackend(containers: runtime.containers, sandboxes: runtime.sandboxes),
            logger: Logger(label: "streaming"))
        let streamURL = try await streaming.start()
        logger.info("streaming server listening", metadata: ["url": "\(streamURL)"])
        let transport = CRIServerTransport.make(.init(socketPath: config.api.listen,
                                                      maxRequestPayloadSize: config.api.grpcMaxRecvMsgSize))
        let server = GRPCServer(
            transport: transport,
            services: [RuntimeService(info: info, sandboxes: runtime.sandboxes, containers: runtime.containers,
                                      streaming: streaming), images.service, CrispImagesService(images: images.manager)],
            interceptors: [RPCMetricsInterceptor(logger: Logger(label: "grpc")), ErrorMappingInterceptor(logger: Logger(label: "grpc"))])
        services.append(GRPCServerService(server: server, socketPath: config.api.listen, logger: logger,
                                          events: runtime.containers.events))
        services.append(ReloadService(sources: sources, live: live, level: level, images: images.manager, logger: logger))

        logger.info("crispd starting", metadata: [
            "version": "\(CrispVersion.string)", "pid": "\(getpid())", "root": "\(config.root)",
            "runroot": "\(config.runRoot)", "listen": "\(config.api.listen)",
        ])
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger))
        defer {
            runtime.watcher.stop()
            network.stop()
            SocketPreparation.remove(path: config.api.listen)
            withExtendedLifetime(lock) {}
        }
        let result = await Result(catching: { try await group.run() })
        // Every stream is closed: exec commands killed, attach sockets and forwarded connections closed.
        await streaming.stop()
        // Containers keep running under conmon; only the daemon's own resources are released.
        await images.manager.shutdown()
        // Their root filesystems stay mounted too; the next crispd takes the mount counts over.
        await storage.close(keepingMounts: true)
        try result.get()
        logger.info("crispd stopped")
    }
}
