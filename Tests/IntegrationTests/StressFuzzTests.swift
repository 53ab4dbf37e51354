import IntegrationSupport
import CRIAPI
import CrispCore
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SwiftProtobuf
import Synchronization
import Testing

/// Malformed and hostile requests (issue 16). Every CRI RPC gets mutants of a valid request
/// (boundary strings and numbers, traversals, non-UTF-8, dropped, repeated and unknown fields,
/// noise), aimed at a live pod and container; then targeted cases (log paths that climb out,
/// huge label maps, negative resources, an 80 MiB message), and clients that send garbage or
/// stall mid-RPC. crispd must never crash or hang, every failure must be a typed status (never
/// Unknown or Internal), and nothing may appear outside the directories it was given.
@Suite(.serialized) struct StressFuzzTests {
    typealias Lifecycle = CRI

    struct Raw: MessageSerializer, MessageDeserializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
        func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] {
            bytes.withUnsafeBytes { Array($0) }
        }
    }

    /// A CRI method, whether it streams its answers, and a valid request for it.
    struct Target: Sendable {
        let method: MethodDescriptor
        let streaming: Bool
        let template: [UInt8]
    }

    static let typed: Set<RPCError.Code> = [.invalidArgument, .notFound, .failedPrecondition, .alreadyExists,
                                            .outOfRange, .resourceExhausted, .deadlineExceeded, .permissionDenied,
                                            .unimplemented]

    static func bytes(_ m: some SwiftProtobuf.Message) -> [UInt8] { (try? m.serializedBytes()) ?? [] }

    static func targets(pod: String, podConfig: Runtime_V1_PodSandboxConfig, container: String, logDir: String,
                        canary: String) -> [Target] {
        typealias R = Runtime_V1_RuntimeService.Method
        typealias I = Runtime_V1_ImageService.Method
        var run = Runtime_V1_RunPodSandboxRequest()
        run.config = podConfig
        run.config.metadata.name = "fuzz"
        run.config.labels = ["app": "fuzz", "tier": "x"]
        run.config.annotations = ["a": "b"]
        run.config.portMappings = [{ var p = Runtime_V1_PortMapping(); p.containerPort = 80; p.hostPort = 0; p.protocol = .tcp; return p }()]
        run.config.linux.sysctls = ["kernel.shm_rmid_forced": "1"]
        run.config.linux.securityContext.namespaceOptions.pid = .container
        run.config.linux.securityContext.seccomp.profileType = .runtimeDefault
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = pod
        create.sandboxConfig = podConfig
        create.config = CRI.containerConfig("fz", ["/bin/true"], logPath: "fz/0.log")
        create.config.args = ["a", "b"]
        create.config.workingDir = "/tmp"
        create.config.labels = ["l": "v"]
        create.config.mounts = [{ var m = Runtime_V1_Mount(); m.containerPath = "/data"; m.hostPath = canary; m.readonly = true; return m }()]
        create.config.devices = [{ var d = Runtime_V1_Device(); d.containerPath = "/dev/fz"; d.hostPath = "/dev/null"; d.permissions = "rw"; return d }()]
        create.config.linux.resources.cpuShares = 512
        create.config.linux.resources.memoryLimitInBytes = 64 << 20
        create.config.linux.resources.cpuQuota = 50_000
        create.config.linux.resources.cpuPeriod = 100_000
        create.config.linux.resources.oomScoreAdj = 500
        create.config.linux.securityContext.runAsUser.value = 1000
        create.config.linux.securityContext.capabilities.addCapabilities = ["NET_ADMIN"]
        create.config.linux.securityContext.maskedPaths = ["/proc/kcore"]
        create.config.linux.securityContext.seccomp.profileType = .runtimeDefault
        func id<M: SwiftProtobuf.Message>(_ m: M) -> [UInt8] { bytes(m) }
        var update = Runtime_V1_UpdateContainerResourcesRequest()
        update.containerID = container
        update.linux = create.config.linux.resources
        var exec = Runtime_V1_ExecSyncRequest()
        exec.containerID = container
        exec.cmd = ["/bin/echo", "hi"]
        exec.timeout = 5
        var stream = Runtime_V1_ExecRequest()
        stream.containerID = container
        stream.cmd = ["/bin/true"]
        stream.stdout = true
        var attach = Runtime_V1_AttachRequest()
        attach.containerID = container
        attach.stdout = true
        var forward = Runtime_V1_PortForwardRequest()
        forward.podSandboxID = pod
        forward.port = [80]
        var stopC = Runtime_V1_StopContainerRequest()
        stopC.containerID = container
        stopC.timeout = 2
        var list = Runtime_V1_ListContainersRequest()
        list.filter.podSandboxID = pod
        list.filter.labelSelector = ["l": "v"]
        var checkpoint = Runtime_V1_CheckpointContainerRequest()
        checkpoint.containerID = container
        checkpoint.location = logDir + "/checkpoint.tar"
        var runtimeConfig = Runtime_V1_UpdateRuntimeConfigRequest()
        runtimeConfig.runtimeConfig.networkConfig.podCidr = "10.250.0.0/16"
        var podResources = Runtime_V1_UpdatePodSandboxResourcesRequest()
        podResources.podSandboxID = pod
        podResources.resources = create.config.linux.resources
        var pull = Runtime_V1_PullImageRequest()
        pull.image.image = "127.0.0.1:1/fuzz/none:1"
        pull.auth.username = "u"
        pull.auth.password = "p"
        var imageStatus = Runtime_V1_ImageStatusRequest()
        imageStatus.image.image = CRI.busyboxImage
        imageStatus.verbose = true
        var removeImage = Runtime_V1_RemoveImageRequest()
        removeImage.image.image = "docker.io/library/nothing:1"
        var listImages = Runtime_V1_ListImagesRequest()
        listImages.filter.image.image = CRI.busyboxImage

        let unary: [(MethodDescriptor, [UInt8])] = [
            (R.Version.descriptor, id({ var v = Runtime_V1_VersionRequest(); v.version = "v1"; return v }())),
            (R.RunPodSandbox.descriptor, id(run)),
            (R.StopPodSandbox.descriptor, id({ var r = Runtime_V1_StopPodSandboxRequest(); r.podSandboxID = pod; return r }())),
            (R.RemovePodSandbox.descriptor, id({ var r = Runtime_V1_RemovePodSandboxRequest(); r.podSandboxID = pod; return r }())),
            (R.PodSandboxStatus.descriptor, id({ var r = Runtime_V1_PodSandboxStatusRequest(); r.podSandboxID = pod; r.verbose = true; return r }())),
            (R.ListPodSandbox.descriptor, id({ var r = Runtime_V1_ListPodSandboxRequest(); r.filter.id = pod; r.filter.labelSelector = ["app": "fuzz"]; return r }())),
            (R.CreateContainer.descriptor, id(create)),
            (R.StartContainer.descriptor, id({ var r = Runtime_V1_StartContainerRequest(); r.containerID = container; return r }())),
            (R.StopContainer.descriptor, id(stopC)),
            (R.RemoveContainer.descriptor, id({ var r = Runtime_V1_RemoveContainerRequest(); r.containerID = container; return r }())),
            (R.ListContainers.descriptor, id(list)),
            (R.ContainerStatus.descriptor, id({ var r = Runtime_V1_ContainerStatusRequest(); r.containerID = container; r.verbose = true; return r }())),
            (R.UpdateContainerResources.descriptor, id(update)),
            (R.ReopenContainerLog.descriptor, id({ var r = Runtime_V1_ReopenContainerLogRequest(); r.containerID = container; return r }())),
            (R.ExecSync.descriptor, id(exec)),
            (R.Exec.descriptor, id(stream)),
            (R.Attach.descriptor, id(attach)),
            (R.PortForward.descriptor, id(forward)),
            (R.ContainerStats.descriptor, id({ var r = Runtime_V1_ContainerStatsRequest(); r.containerID = container; return r }())),
            (R.ListContainerStats.descriptor, id({ var r = Runtime_V1_ListContainerStatsRequest(); r.filter.podSandboxID = pod; return r }())),
            (R.PodSandboxStats.descriptor, id({ var r = Runtime_V1_PodSandboxStatsRequest(); r.podSandboxID = pod; return r }())),
            (R.ListPodSandboxStats.descriptor, id({ var r = Runtime_V1_ListPodSandboxStatsRequest(); r.filter.id = pod; return r }())),
            (R.UpdateRuntimeConfig.descriptor, id(runtimeConfig)),
            (R.Status.descriptor, id({ var r = Runtime_V1_StatusRequest(); r.verbose = true; return r }())),
            (R.CheckpointContainer.descriptor, id(checkpoint)),
            (R.ListMetricDescriptors.descriptor, id(Runtime_V1_ListMetricDescriptorsRequest())),
            (R.ListPodSandboxMetrics.descriptor, id(Runtime_V1_ListPodSandboxMetricsRequest())),
            (R.RuntimeConfig.descriptor, id(Runtime_V1_RuntimeConfigRequest())),
            (R.UpdatePodSandboxResources.descriptor, id(podResources)),
            (I.ListImages.descriptor, id(listImages)),
            (I.ImageStatus.descriptor, id(imageStatus)),
            (I.PullImage.descriptor, id(pull)),
            (I.RemoveImage.descriptor, id(removeImage)),
            (I.ImageFsInfo.descriptor, id(Runtime_V1_ImageFsInfoRequest())),
        ]
        let streaming: [(MethodDescriptor, [UInt8])] = [
            (R.StreamPodSandboxes.descriptor, id(Runtime_V1_StreamPodSandboxesRequest())),
            (R.StreamContainers.descriptor, id({ var r = Runtime_V1_StreamContainersRequest(); r.filter.podSandboxID = pod; return r }())),
            (R.StreamContainerStats.descriptor, id(Runtime_V1_StreamContainerStatsRequest())),
            (R.StreamPodSandboxStats.descriptor, id(Runtime_V1_StreamPodSandboxStatsRequest())),
            (R.GetContainerEvents.descriptor, id(Runtime_V1_GetEventsRequest())),
            (R.StreamPodSandboxMetrics.descriptor, id(Runtime_V1_StreamPodSandboxMetricsRequest())),
            (I.StreamImages.descriptor, id(Runtime_V1_StreamImagesRequest())),
        ]
        return unary.map { Target(method: $0.0, streaming: false, template: $0.1) }
            + streaming.map { Target(method: $0.0, streaming: true, template: $0.1) }
    }

    /// The kubelet decides where a pod's logs and cgroups live; those two host paths are held
    /// inside the test's own directories, so mutants cannot litter the host through fields crispd
    /// must trust. Everything else goes through as mutated.
    static func confine(_ bytes: [UInt8], method: MethodDescriptor, logDir: String, cgroupParent: String) -> [UInt8] {
        if method == Runtime_V1_RuntimeService.Method.RunPodSandbox.descriptor,
           var r = try? Runtime_V1_RunPodSandboxRequest(serializedBytes: bytes) {
            if r.config.logDirectory.hasPrefix("/") { r.config.logDirectory = logDir }
            r.config.linux.cgroupParent = cgroupParent
            return Self.bytes(r)
        }
        return bytes
    }

    /// One call; returns the status code it ended with (nil: OK).
    static func call(_ client: GRPCClient<HTTP2ClientTransport.Posix>, _ target: Target, _ request: [UInt8]) async -> RPCError.Code? {
        var options = CallOptions.defaults
        options.timeout = .seconds(30)
        do {
            if target.streaming {
                // Long-lived streams (events, metrics) are left after a moment: a hang is no answer at all.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { [options] in
                        try await client.serverStreaming(request: ClientRequest(message: request), descriptor: target.method,
                                                         serializer: Raw(), deserializer: Raw(), options: options) { response in
                            var n = 0
                            for try await _ in response.messages { n += 1; if n == 3 { break } }
                        }
                    }
                    group.addTask { try await Task.sleep(for: .milliseconds(300)) }
                    try await group.next()
                    group.cancelAll()
                }
            } else {
                _ = try await client.unary(request: ClientRequest(message: request), descriptor: target.method,
                                           serializer: Raw(), deserializer: Raw(), options: options) { try $0.message }
            }
            return nil
        } catch let e as RPCError {
            return e.code
        } catch {
            return .cancelled
        }
    }

    /// Everything a round made goes, through the CRI.
    static func removeAll(_ runtime: Lifecycle.Client) async throws {
        for c in try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers {
            var r = Runtime_V1_RemoveContainerRequest()
            r.containerID = c.id
            _ = try await runtime.removeContainer(r)
        }
        for p in try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items {
            try await Lifecycle.removePod(runtime, p.id)
        }
    }

    static func entries(_ dir: String) -> Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []) }

    @Test func mutatedRequestsGetTypedErrorsAndTouchNothingOutside() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let rounds = StressSize.pick(quick: 3, full: 12)
        let perMethod = StressSize.pick(quick: 5, full: 20)
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let crispd = world.crispd
        let canary = "/tmp/crisp-canary-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: canary, withIntermediateDirectories: true)
        try "canary".write(toFile: canary + "/canary", atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: canary) }
        let watched = ["/", "/etc", "/var", "/var/log", "/run", canary, FileManager.default.currentDirectoryPath]
        let before = watched.map(Self.entries)
        let logDir = crispd.dir + "/fuzz-logs"
        var mutator = WireMutator(extraStrings: ["../../../../../../../.." + canary + "/escape", "a/../../../../../../.." + canary])

        let findings = StressFindings()
        let codes = Mutex<[String: Int]>([:])
        var spent: [String: Duration] = [:]
        let started = ContinuousClock.now
        try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: crispd.socket), transportSecurity: .plaintext)) { client in
            let runtime = Runtime_V1_RuntimeService.Client(wrapping: client)
            for round in 1...rounds {
                let pod = try await Lifecycle.runPod(runtime, "fuzzpod\(round)", world: world) { $0.logDirectory = logDir }
                let container = try await Lifecycle.startContainer(runtime, pod: pod, "victim",
                                                                   ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])
                let targets = Self.targets(pod: pod.id, podConfig: pod.config, container: container, logDir: logDir, canary: canary)
                for target in targets.shuffled() {
                    for _ in 0..<perMethod {
                        let request = Self.confine(mutator.mutate(target.template), method: target.method, logDir: logDir,
                                                   cgroupParent: world.cgroupParent)
                        let callStart = ContinuousClock.now
                        let code = await Self.call(client, target, request)
                        spent[target.method.method, default: .zero] += ContinuousClock.now - callStart
                        findings.count()
                        codes.withLock { $0[code.map { "\($0)" } ?? "ok", default: 0] += 1 }
                        // A registry that cannot be reached is Unavailable by design (crisp's pull errors).
                        let unreachable = code == .unavailable && target.method == Runtime_V1_ImageService.Method.PullImage.descriptor
                        if let code, code != .cancelled || !target.streaming, !Self.typed.contains(code), !unreachable {
                            findings.add("\(target.method.method): \(code) for \(request.count) bytes: \(request.prefix(96).map { String(format: "%02x", $0) }.joined())")
                        }
                        if !crispd.isRunning { findings.add("crispd died after \(target.method.method)"); return }
                    }
                }
                try await Self.removeAll(runtime)
            }
        }
        #expect(crispd.isRunning, "crispd died: \(crispd.log.suffix(3000))")
        for (dir, was) in zip(watched, before) {
            // Other suites run beside this one and make their own roots on first use (CI on a
            // new machine: /run/crisp-test-crun, /run/userns, crisp-run); the fuzzer's strings
            // never start with "crisp" and never spell "userns".
            let now = Self.entries(dir).filter { !$0.hasPrefix("crisp") && $0 != "userns" }
            #expect(now.subtracting(was).isEmpty, "new in \(dir): \(now.subtracting(was).sorted())")
        }
        #expect(Self.entries(canary) == ["canary"], "the canary directory changed: \(Self.entries(canary).sorted())")
        for log in (FileManager.default.enumerator(atPath: logDir)?.allObjects as? [String]) ?? [] {
            let resolved = (logDir + "/" + log as NSString).resolvingSymlinksInPath
            #expect(resolved.hasPrefix(logDir), "a log outside the pod's log directory: \(resolved)")
        }
        try await crispd.withClients { runtime, _ in
            try await Self.removeAll(runtime)
            _ = try await runtime.version(Runtime_V1_VersionRequest())
        }
        world.assertNoLeaks()
        let problems = findings.all
        print("stress fuzz: \(rounds) rounds × \(Self.targets(pod: "", podConfig: .init(), container: "", logDir: "", canary: "").count) methods × \(perMethod) mutants, "
              + "\(findings.operationCount) requests, codes \(codes.withLock { $0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")), "
              + "\(problems.count) problems, \(ContinuousClock.now - started); the slowest methods: "
              + spent.sorted { $0.value > $1.value }.prefix(6).map { "\($0.key) \($0.value.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))" }.joined(separator: ", "))
        let causes = crispd.log.split(separator: "\n").filter {
            // PullImage's Unavailable (an unreachable registry) is allowed and would crowd out the rest.
            $0.contains("rpc failed") && ($0.contains("code=internal") || $0.contains("code=unknown")
                || ($0.contains("code=unavailable") && !$0.contains("method=PullImage")))
        }
        #expect(problems.isEmpty, "\(problems.prefix(30).joined(separator: "\n"))\ncrispd's log:\n\(causes.prefix(30).joined(separator: "\n"))")
    }

    /// Requests aimed at known weak spots, each with the status it must get.
    @Test func hostileRequestsGetTheRightStatus() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let crispd = world.crispd
        try await crispd.withClients { [world] runtime, images in
            let pod = try await Lifecycle.runPod(runtime, "hostile", world: world) { $0.logDirectory = crispd.dir + "/hostile-logs" }
            let victim = try await Lifecycle.startContainer(runtime, pod: pod, "victim", ["/bin/sleep", "600"])
            func code(_ body: () async throws -> Void) async -> String {
                do { try await body(); return "ok" } catch let e as RPCError { return "\(e.code): \(e.message.prefix(200))" } catch { return "\(error)" }
            }
            func expectCode(_ expected: RPCError.Code, _ what: String, _ body: () async throws -> Void) async {
                let got = await code(body)
                #expect(got.hasPrefix("\(expected)"), "\(what): \(got)")
            }
            for id in ["a\0b", String(repeating: "b", count: 70_000), "../../etc", "\u{202e}x", ""] {
                await expectCode(id.isEmpty ? .invalidArgument : .notFound, "ContainerStatus(\(id.prefix(8)))") {
                    var r = Runtime_V1_ContainerStatusRequest(); r.containerID = id
                    _ = try await runtime.containerStatus(r)
                }
                await expectCode(id.isEmpty ? .invalidArgument : .notFound, "Exec(\(id.prefix(8)))") {
                    var r = Runtime_V1_ExecRequest(); r.containerID = id; r.cmd = ["/bin/true"]; r.stdout = true
                    _ = try await runtime.exec(r)
                }
                await expectCode(id.isEmpty ? .invalidArgument : .notFound, "UpdateContainerResources(\(id.prefix(8)))") {
                    var r = Runtime_V1_UpdateContainerResourcesRequest(); r.containerID = id
                    _ = try await runtime.updateContainerResources(r)
                }
            }
            for path in ["/etc/crisp-hostile.log", "../../../../../../tmp/crisp-hostile.log", "a/../../x.log"] {
                await expectCode(.invalidArgument, "log path \(path)") {
                    _ = try await Lifecycle.startContainer(runtime, pod: pod, "log-\(path.count)", ["/bin/true"]) { $0.logPath = path }
                }
            }
            #expect(!FileManager.default.fileExists(atPath: "/etc/crisp-hostile.log") && !FileManager.default.fileExists(atPath: "/tmp/crisp-hostile.log"))
            await expectCode(.invalidArgument, "a relative pod log directory") {
                _ = try await Lifecycle.runPod(runtime, "rel", world: world) { $0.logDirectory = "../../tmp" }
            }
            await expectCode(.invalidArgument, "negative memory limit") {
                var r = Runtime_V1_UpdateContainerResourcesRequest(); r.containerID = victim
                r.linux.memoryLimitInBytes = -5
                _ = try await runtime.updateContainerResources(r)
            }
            await expectCode(.invalidArgument, "a memory limit of 4 bytes") {
                var r = Runtime_V1_UpdateContainerResourcesRequest(); r.containerID = victim
                r.linux.memoryLimitInBytes = 4
                _ = try await runtime.updateContainerResources(r)
            }
            await expectCode(.invalidArgument, "a CPU quota of Int64.max microseconds") {
                var r = Runtime_V1_UpdateContainerResourcesRequest(); r.containerID = victim
                r.linux.cpuPeriod = 100_000; r.linux.cpuQuota = .max
                _ = try await runtime.updateContainerResources(r)
            }
            await expectCode(.invalidArgument, "a container with negative CPU shares") {
                _ = try await Lifecycle.startContainer(runtime, pod: pod, "negcpu", ["/bin/true"]) { $0.linux.resources.cpuShares = -1 }
            }
            // Timeouts of Int64.max seconds are no limit, not a crash (the fuzzer's ExecSync one
            // trapped in Task.sleep and killed crispd).
            let longExec = await code {
                var r = Runtime_V1_ExecSyncRequest(); r.containerID = victim; r.cmd = ["/bin/true"]; r.timeout = .max
                _ = try await runtime.execSync(r)
            }
            #expect(longExec == "ok", "ExecSync with a timeout of Int64.max seconds: \(longExec)")
            // The init is PID 1, which ignores a TERM that arrives before its trap is set: the
            // ExecSync returns once the trap is in place (it marks that), so the stop can end.
            let stoppable = try await Lifecycle.startContainer(runtime, pod: pod, "stoppable",
                                                               ["/bin/sh", "-c", "trap 'exit 0' TERM; touch /tmp/trapped; while true; do sleep 0.2; done"])
            var ready = Runtime_V1_ExecSyncRequest(); ready.containerID = stoppable; ready.timeout = 30
            ready.cmd = ["/bin/sh", "-c", "while [ ! -e /tmp/trapped ]; do sleep 0.05; done"]
            _ = try await runtime.execSync(ready)
            let longStop = await code {
                var r = Runtime_V1_StopContainerRequest(); r.containerID = stoppable; r.timeout = .max
                _ = try await runtime.stopContainer(r)
            }
            #expect(longStop == "ok", "StopContainer with a timeout of Int64.max seconds: \(longStop)")
            // 100,000 labels (about 2.5 MB) are a large but valid request.
            let labels = Dictionary(uniqueKeysWithValues: (0..<100_000).map { ("k\($0)", "v\($0)") })
            let many = await code { _ = try await Lifecycle.startContainer(runtime, pod: pod, "labels", ["/bin/true"]) { $0.labels = labels } }
            #expect(many == "ok", "100,000 labels: \(many)")
            // 80 MiB is more than crispd accepts (grpc_max_recv_msg_size, 16 MiB by default).
            // grpc-swift-nio-transport's server resets the stream (RST_STREAM CANCEL) instead of
            // answering RESOURCE_EXHAUSTED, so a client sees the stream end; what matters here is
            // that the refusal is quick and crispd goes on serving.
            let big = await code {
                var r = Runtime_V1_ListContainersRequest()
                r.filter.labelSelector = ["big": String(repeating: "x", count: 80 << 20)]
                _ = try await runtime.listContainers(r)
            }
            #expect(big.hasPrefix("resourceExhausted") || big.contains("RST_STREAM"), "an 80 MiB message: \(big)")
            _ = try await images.listImages(Runtime_V1_ListImagesRequest())
            try await Self.removeAll(runtime)
        }
        #expect(crispd.isRunning)
        world.assertNoLeaks()
    }

    /// Clients that send garbage are dropped, clients that stall mid-frame hold only their own
    /// connection, and neither keeps crispd from answering everyone else promptly.
    @Test func garbageAndStalledClientsDoNotStopOthers() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer { world.cleanup() }
        let crispd = world.crispd
        let baseline = try #require(ProcessSample(pid: crispd.processIdentifier))
        func send(_ fd: Int32, _ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        // The HTTP/2 preface, an empty SETTINGS frame, and a HEADERS frame that announces 100
        // bytes and sends 10.
        let stall: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
            + [0, 0, 100, 1, 4, 0, 0, 0, 1] + [UInt8](repeating: 0x82, count: 10)
        var stalled: [Int32] = []
        defer { for fd in stalled { close(fd) } }
        for _ in 0..<20 {
            let fd = try UnixSocket.connect(path: crispd.socket, seqpacket: false)
            stalled.append(fd)
            send(fd, stall)
        }
        // Garbage: the server must hang up on each (read sees EOF or a reset) within 10 s.
        let socket = crispd.socket
        let dropped = try await runOnThread(name: "garbage-clients") { () throws(CrispError) -> Int in
            var dropped = 0
            for i in 0..<20 {
                let fd = try UnixSocket.connect(path: socket, seqpacket: false)
                defer { close(fd) }
                let noise = (0..<(i % 2 == 0 ? 4096 : 24)).map { _ in UInt8.random(in: 0...255) }
                _ = noise.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                var buffer = [UInt8](repeating: 0, count: 4096)
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline, poll(&pfd, 1, 1000) >= 0 {
                    guard pfd.revents != 0 else { continue }
                    let n = read(fd, &buffer, buffer.count)
                    if n <= 0 { dropped += 1; break }
                }
            }
            return dropped
        }
        #expect(dropped == 20, "connections that sent garbage and were hung up on: \(dropped) of 20")
        // Everyone else is answered at once, stalled connections or not.
        try await crispd.withClients { runtime, images in
            for _ in 0..<20 {
                let start = ContinuousClock.now
                _ = try await runtime.version(Runtime_V1_VersionRequest())
                _ = try await images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
                #expect(ContinuousClock.now - start < .seconds(5), "an RPC beside stalled clients took \(ContinuousClock.now - start)")
            }
        }
        for fd in stalled { close(fd) }
        stalled = []
        // Their descriptors go when they do.
        var after = ProcessSample(pid: crispd.processIdentifier)
        let deadline = ContinuousClock.now + .seconds(10)
        while let a = after, a.fds > baseline.fds + 4, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            after = ProcessSample(pid: crispd.processIdentifier)
        }
        #expect((after?.fds ?? .max) <= baseline.fds + 4, "crispd's descriptors: \(baseline) before, \(after.map(\.description) ?? "gone") after")
        #expect(crispd.isRunning)
    }
}
