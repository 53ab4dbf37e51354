// swift-tools-version:6.2
import Foundation
import PackageDescription

/// For linker inputs that live in the repository (the symbol ordering file of crispd).
let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

// Upcoming features on every target: no library leaks a dependency through its public API.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "crisp",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "crispd", targets: ["crispd"]),
        .executable(name: "crispctl", targets: ["crispctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    ],
    targets: [
        // MARK: core libraries
        .target(
            name: "CrispCore",
            swiftSettings: strict),
        .target(name: "CCrispShim"),
        .target(
            name: "CrispOS",
            dependencies: [
                "CrispCore", "CCrispShim",
            ],
            swiftSettings: strict),
        .target(name: "CrispOCI", dependencies: ["CrispCore"], swiftSettings: strict),
        .target(
            name: "CrispConfig",
            dependencies: ["CrispCore", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: strict),
        .systemLibrary(
            name: "CArchive", pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]),
        .target(
            name: "CrispStorage",
            dependencies: [
                "CrispCore", "CrispOCI", "CrispOS", "CArchive", "CCrispShim",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Storage test helper: applies layers so the crash-safety test can SIGKILL it mid-way.
        .executableTarget(
            name: "crisp-storage-crashhelper",
            dependencies: ["CrispStorage", "CrispCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        // `make bench` (scripts/bench-storage.sh): layer apply time and peak RSS against tar -xf.
        .executableTarget(
            name: "crisp-bench",
            dependencies: [
                "CrispStorage", "CrispCore", "CrispOS", "CrispTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        .target(
            name: "CrispImage",
            dependencies: [
                "CrispCore", "CrispOCI", "CrispOS", "CrispStorage", "CArchive",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "CrispNetwork",
            dependencies: [
                "CrispCore", "CrispOS",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Pure security decisions: request + host facts -> spec fragments. The default seccomp
        // profile and AppArmor template are compiled in, so no resource bundle must be installed.
        .target(
            name: "CrispSecurity",
            dependencies: ["CrispCore", "CrispOCI"],
            resources: [.embedInCode("Resources/seccomp-default.json"), .embedInCode("Resources/apparmor-default.tmpl")],
            swiftSettings: strict),
        .target(
            name: "CrispRuntime",
            dependencies: [
                "CrispCore", "CrispOCI", "CrispOS", "CCrispShim", "CrispSecurity",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // Single-threaded C helper: creates namespaces with unshare and pins them with bind mounts,
        // which a multithreaded Swift process must not do itself.
        .executableTarget(name: "crisp-pinns"),

        // MARK: API, orchestration, edge
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Exec/Attach/PortForward over SPDY/3.1 and WebSocket; knows only StreamingBackend.
        .target(
            name: "CrispStreaming",
            dependencies: [
                "CrispCore", "CrispOS", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The gRPC server transport on the CRI socket, with crisp's connection policy.
        .target(
            name: "CrispTransport",
            dependencies: [
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: strict),
        .target(
            name: "CRIAPI",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            // Generated code: compiled in Swift 6 mode, but the upcoming-feature set is left out
            // because the generator writes `import` lines we do not control.
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .target(
            name: "CrispService",
            dependencies: [
                "CrispCore", "CrispConfig", "CrispImage", "CrispStorage", "CrispRuntime", "CrispOCI", "CrispOS", "CrispNetwork", "CrispSecurity",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .target(
            name: "CrispServer",
            dependencies: [
                "CRIAPI", "CrispCore", "CrispService",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "crispd",
            dependencies: [
                "CrispCore", "CrispConfig", "CrispServer", "CrispService", "CrispOS", "CRIAPI", "CrispRuntime", "CrispStorage", "CrispNetwork",
                "CrispTransport", "CrispStreaming", "CrispSecurity",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict,
            // Idle memory: lld packs the ~160,000 relative relocations (DT_RELR, glibc >= 2.36),
            // the Swift runtime's symbols need not be exported from the executable, and the
            // functions start-up runs are laid out together (scripts/crispd.order, made by
            // scripts/gen-symbol-order.sh) instead of spread over 20 MB of text.
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                                           "-Xlinker", "--no-export-dynamic",
                                           "-Xlinker", "--symbol-ordering-file=\(packageDirectory)/scripts/crispd.order",
                                           "-Xlinker", "--no-warn-symbol-ordering"])]),
        .executableTarget(
            name: "crispctl",
            dependencies: [
                "CRIAPI", "CrispConfig", "CrispStreaming", "CrispOS", "CrispCore",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict),

        // MARK: tests
        .target(
            name: "CrispTestSupport",
            dependencies: [
                "CrispCore", "CrispOS", "CrispOCI", "CrispRuntime", "CrispNetwork", "CrispService", "CrispStorage", "CrispConfig", "CArchive",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Tests/CrispTestSupport",
            swiftSettings: strict),
        .target(
            name: "RegistryTestSupport",
            dependencies: [
                "CrispCore", "CrispOCI", "CrispTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/RegistryTestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "CrispTransportTests",
            dependencies: [
                "CrispTransport", "CrispTestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "CrispStreamingTests",
            dependencies: [
                "CrispStreaming", "CrispCore", "CrispOS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(name: "CrispCoreTests", dependencies: ["CrispCore"], swiftSettings: strict),
        .testTarget(name: "CrispSecurityTests", dependencies: ["CrispSecurity", "CrispCore", "CrispOCI"], swiftSettings: strict),
        .testTarget(name: "CrispConfigTests", dependencies: ["CrispConfig", "CrispCore"], swiftSettings: strict),
        .testTarget(
            name: "CrispStorageTests",
            dependencies: [
                "CrispStorage", "CrispOS", "CrispCore", "CrispTestSupport", "CArchive",
                "crisp-storage-crashhelper",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "CrispOSTests",
            dependencies: ["CrispOS", "CrispCore", "CrispTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "CrispImageTests",
            dependencies: [
                "CrispImage", "CrispOCI", "CrispOS", "CrispStorage", "CrispCore", "CrispTestSupport", "RegistryTestSupport", "CrispService",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "CrispNetworkTests",
            dependencies: ["CrispNetwork", "CrispOS", "CrispCore", "CrispTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(
            name: "CrispServerTests",
            dependencies: [
                "CrispServer", "CrispCore", "CRIAPI", "CrispService", "CrispTestSupport", "CrispImage",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "CrispServiceTests",
            dependencies: [
                "CrispService", "CrispRuntime", "CrispCore", "CrispSecurity", "CrispConfig", "CrispStorage", "CrispNetwork", "CrispTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "CrispRuntimeTests",
            dependencies: ["CrispRuntime", "CrispOCI", "CrispCore", "CrispSecurity"],
            swiftSettings: strict),
        // Integration tests' own support: a crispd subprocess, the CRI steps tests repeat, and the
        // world (pods, leaks, clean-up) they run in.
        .target(
            name: "IntegrationSupport",
            dependencies: [
                "CRIAPI", "CrispCore", "CrispOS", "CrispRuntime", "CrispStorage", "CrispTestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            path: "Tests/IntegrationSupport",
            swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "CRIAPI", "CrispCore", "CrispConfig", "CrispOS", "CrispRuntime", "CrispStorage", "CrispTestSupport", "RegistryTestSupport",
                "CrispStreaming", "IntegrationSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            swiftSettings: strict),
    ]
)
