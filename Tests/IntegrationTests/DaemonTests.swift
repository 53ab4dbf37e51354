import IntegrationSupport
import CRIAPI
import CrispConfig
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import Testing

@Suite(.serialized) struct DaemonTests {
    @Test func versionStatusAndRuntimeConfig() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        try await d.withClients { runtime, _ in
            var update = Runtime_V1_UpdateRuntimeConfigRequest()
            update.runtimeConfig.networkConfig.podCidr = "10.88.0.0/16"
            _ = try await runtime.updateRuntimeConfig(update)
            let v = try await runtime.version(Runtime_V1_VersionRequest())
            #expect(v.runtimeName == "crisp")
            #expect(v.runtimeApiVersion == "v1")
            #expect(v.version == "0.1.0")

            let s = try await runtime.status(Runtime_V1_StatusRequest())
            let conditions = Dictionary(uniqueKeysWithValues: s.status.conditions.map { ($0.type, $0) })
            #expect(conditions["RuntimeReady"] != nil)
            let net = try #require(conditions["NetworkReady"])
            #expect(net.status == false)
            #expect(net.reason == "NetworkPluginNotReady")
            #expect(net.message.contains(d.networkDir))
            #expect(s.info.isEmpty)

            var verbose = Runtime_V1_StatusRequest()
            verbose.verbose = true
            let sv = try await runtime.status(verbose)
            let json = try #require(sv.info["config"])
            let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            #expect((object?["crisp"] as? [String: Any])?["root"] as? String == d.root)

            let rc = try await runtime.runtimeConfig(Runtime_V1_RuntimeConfigRequest())
            #expect(rc.linux.cgroupDriver == .cgroupfs)
        }
    }

    @Test func networkReadyOnceAConfigExists() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        try #"{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"loopback"}]}"#
            .write(toFile: d.networkDir + "/10-t.conflist", atomically: true, encoding: .utf8)
        try await d.withClients { runtime, _ in
            let s = try await runtime.status(Runtime_V1_StatusRequest())
            #expect(s.status.conditions.first { $0.type == "NetworkReady" }?.status == true)
        }
    }

    /// Every CRI RPC is served now (CheckpointContainer was the last): an empty request is
    /// refused for what it lacks, and only a method crisp does not know answers UNIMPLEMENTED.
    @Test func everyCRIMethodIsServedAndUnknownOnesAreUnimplemented() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: d.socket), transportSecurity: .plaintext)) { client in
            let unknown = MethodDescriptor(fullyQualifiedService: "runtime.v1.RuntimeService", method: "NoSuchMethod")
            do {
                _ = try await client.unary(request: ClientRequest(message: Runtime_V1_VersionRequest()), descriptor: unknown,
                                           serializer: ProtobufSerializer<Runtime_V1_VersionRequest>(),
                                           deserializer: ProtobufDeserializer<Runtime_V1_VersionResponse>(),
                                           options: .defaults) { try $0.message }
                Issue.record("an unknown method succeeded")
            } catch let error as RPCError {
                #expect(error.code == .unimplemented, "\(error)")
            }
        }
        try await d.withClients { runtime, _ in
            do {
                _ = try await runtime.checkpointContainer(Runtime_V1_CheckpointContainerRequest())
                Issue.record("CheckpointContainer without a container succeeded")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("container_id"), "\(error.message)")
            }
            let v = try await runtime.version(Runtime_V1_VersionRequest())
            #expect(v.runtimeName == "crisp")
        }
    }

    @Test func socketModeAndSigtermCleanExit() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        let attributes = try FileManager.default.attributesOfItem(atPath: d.socket)
        #expect((attributes[.posixPermissions] as? Int) == 0o660)
        let parent = try FileManager.default.attributesOfItem(atPath: d.runRoot)
        #expect(parent[.type] as? FileAttributeType == .typeDirectory)
        #expect(d.signal(SIGTERM) == 0)
        #expect(!FileManager.default.fileExists(atPath: d.socket))
        #expect(d.log.contains("crispd stopped"))
    }

    @Test func secondDaemonOnTheSameRootFails() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        let (status, output) = try runCrispd(d.baseArguments().map { $0 == d.socket ? d.dir + "/other.sock" : $0 })
        #expect(status != 0)
        #expect(output.contains("another crispd (pid \(d.processIdentifier)) already uses this root"))
        // The first one is unharmed.
        try await d.withClients { runtime, _ in
            let v = try await runtime.version(Runtime_V1_VersionRequest())
            #expect(v.runtimeName == "crisp")
        }
    }

    @Test func liveSocketIsNotStolen() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        let other = try CrispdProcess()
        defer { other.stop() }
        try other.writeConfig("")
        let args = other.baseArguments().map { $0 == other.socket ? d.socket : $0 }
        let (status, output) = try runCrispd(args)
        #expect(status != 0)
        #expect(output.contains("held by a live process"))
        #expect(FileManager.default.fileExists(atPath: d.socket))
    }

    @Test func staleSocketFromACrashIsReplaced() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try await d.start()
        #expect(d.signal(SIGKILL) != 0)
        #expect(FileManager.default.fileExists(atPath: d.socket)) // left behind by the crash
        let again = try CrispdProcess(dir: d.dir)
        try await again.start()
        defer { again.signal(SIGTERM) }
        try await again.withClients { runtime, _ in
            let v = try await runtime.version(Runtime_V1_VersionRequest())
            #expect(v.runtimeName == "crisp")
        }
    }

    @Test func badConfigStopsStartUpWithFileAndLine() throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try d.writeConfig("[crisp]\nlog_level = \"info\"\n")
        try d.writeConfig("[crisp.api]\nstream_prot = 1\n", name: "50-typo.conf")
        let (status, output) = try runCrispd(d.baseArguments())
        #expect(status == 2)
        #expect(output.contains(d.configDir + "/crisp.conf.d/50-typo.conf:2: crisp.api.stream_prot: unknown key"))
        #expect(!FileManager.default.fileExists(atPath: d.socket))
    }

    @Test func helpDocumentsEveryFlag() throws {
        let (status, output) = try runCrispd(["--help"])
        #expect(status == 0)
        for key in ConfigSchema.keys {
            #expect(output.contains(key.flag + " "), "crispd --help lacks \(key.flag)")
        }
        for flag in ["--config ", "--config-dir ", "--runtimes "] { #expect(output.contains(flag)) }
    }

    @Test func configCommandRoundTrips() throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try d.writeConfig("[crisp]\nlog_level = \"debug\"\n[crisp.runtime.runtimes.kata]\nruntime_path = \"/opt/kata\"\n")
        let (status, first) = try runCrispd(["config"] + d.baseArguments() + ["--stream-port", "10010"])
        #expect(status == 0, "\(first)")
        #expect(first.contains("log_level = \"debug\""))
        #expect(first.contains("[crisp.runtime.runtimes.kata]"))
        let rendered = d.dir + "/rendered.conf"
        try first.write(toFile: rendered, atomically: true, encoding: .utf8)
        let (status2, second) = try runCrispd(["config", "--config", rendered, "--config-dir", d.dir + "/none"])
        #expect(status2 == 0)
        #expect(second == first)
    }

    @Test func sighupReloadsTheLogLevel() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        try d.writeConfig("[crisp]\nlog_level = \"info\"\n")
        try await d.start()
        try d.writeConfig("[crisp]\nlog_level = \"debug\"\n[crisp.image]\npause_image = \"localhost/pause:1\"\n[crisp.api]\nstream_port = 4242\n")
        d.signal(SIGHUP)
        try await d.waitForLog("msg=\"configuration reloaded\"", timeout: .seconds(10))
        let line = d.log.split(separator: "\n").first { $0.contains("msg=\"configuration reloaded\"") }.map(String.init) ?? ""
        #expect(line.contains("changed=crisp.log_level,crisp.image.pause_image"))
        #expect(line.contains("ignored_until_restart=crisp.api.stream_port"))
        try await d.withClients { runtime, _ in
            var verbose = Runtime_V1_StatusRequest()
            verbose.verbose = true
            let json = try await runtime.status(verbose).info["config"] ?? ""
            #expect(json.contains("localhost/pause:1"))
        }
    }

    @Test func prometheusMetricsCountRPCs() async throws {
        let d = try CrispdProcess()
        defer { d.stop() }
        let port = try freeTCPPort()
        try await d.start(extra: ["--enable-metrics", "true", "--metrics-port", "\(port)"])
        try await d.withClients { runtime, _ in
            _ = try await runtime.version(Runtime_V1_VersionRequest())
            _ = try? await runtime.checkpointContainer(Runtime_V1_CheckpointContainerRequest())  // InvalidArgument
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var body = ""
        while ContinuousClock.now < deadline {
            body = (try? httpGet(port: port, path: "/metrics")) ?? ""
            if body.contains("crisp_grpc_requests_total") { break }
            // The counters are exported when the RPCs finish; no event says so to an outsider.
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(body.contains(#"crisp_grpc_requests_total{method="Version"} 1"#), "\(body)")
        #expect(body.contains(#"crisp_grpc_errors_total{method="CheckpointContainer",code="\#(RPCError.Code.invalidArgument)"} 1"#), "\(body)")
        #expect(body.contains("crisp_grpc_request_duration_seconds_bucket"))
    }
}
