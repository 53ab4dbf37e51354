import IntegrationSupport
import CRIAPI
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import Synchronization
import Testing

/// Requests built the way the kubelet builds them (`pkg/kubelet/kuberuntime`:
/// generatePodSandboxConfig, generateContainerConfig, makeMounts, the pod sync loop), sent
/// through crispd, conmon, runc and a CNI bridge with portmap. The hugetlb failure that stopped
/// every kubelet container on this host is the kind of thing this suite exists to catch: the
/// shapes here are the kubelet's, not the ones a CRI test would write by hand.
@Suite(.serialized) struct KubeletShapedTests {
    typealias Lifecycle = CRI
    typealias Client = CRI.Client

    enum QOS: String, CaseIterable, Sendable {
        case besteffort, burstable, guaranteed

        /// The cgroupfs driver's parent (`kubepods/<class>/pod<uid>`; guaranteed pods sit directly
        /// under kubepods).
        func cgroupParent(root: String, uid: String) -> String {
            self == .guaranteed ? "\(root)/kubepods/pod\(uid)" : "\(root)/kubepods/\(rawValue)/pod\(uid)"
        }

        /// What the kubelet computes for a container asking for 100m CPU and 64 MiB, limited to
        /// 200m and 128 MiB for burstable, 200m and 128 MiB both ways for guaranteed.
        var cpuShares: Int64 { self == .besteffort ? 2 : self == .burstable ? 102 : 204 }
        var cpuQuota: Int64 { self == .besteffort ? 0 : 20000 }
        var memoryLimit: Int64 { self == .besteffort ? 0 : 128 << 20 }
        var oomScoreAdj: Int64 { self == .besteffort ? 1000 : self == .burstable ? 968 : -997 }
    }

    /// A pod as the kubelet keeps it: its directory under /var/lib/kubelet/pods, its log
    /// directory, and the sandbox config it sends with every CreateContainer.
    struct KubePod: Sendable {
        let name: String
        let uid: String
        let qos: QOS
        let dir: String
        var id = ""
        var config = Runtime_V1_PodSandboxConfig()
        var logDirectory: String { config.logDirectory }
    }

    static let maskedPaths = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                              "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]
    static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    /// The kubelet's directories for one pod: etc-hosts, an emptyDir, the projected service
    /// account token (written as its atomic writer does: a timestamped directory, `..data`
    /// pointing at it, and each file a link through `..data`).
    static func makePod(_ name: String, qos: QOS, node: String, cgroupRoot: String) throws -> KubePod {
        let uid = UUID().uuidString.lowercased()
        let dir = "\(node)/var/lib/kubelet/pods/\(uid)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/volumes/kubernetes.io~empty-dir/work", withIntermediateDirectories: true)
        let token = dir + "/volumes/kubernetes.io~projected/kube-api-access-x7k2p"
        try fm.createDirectory(atPath: token + "/..2026_11_30_12_00_00.000000001", withIntermediateDirectories: true)
        for (file, text) in [("token", "eyJhbGciOi.kubelet-shaped.token"), ("ca.crt", "-----BEGIN CERTIFICATE-----\n"), ("namespace", "default")] {
            try text.write(toFile: token + "/..2026_11_30_12_00_00.000000001/" + file, atomically: false, encoding: .utf8)
            try fm.createSymbolicLink(atPath: token + "/" + file, withDestinationPath: "..data/" + file)
        }
        try fm.createSymbolicLink(atPath: token + "/..data", withDestinationPath: "..2026_11_30_12_00_00.000000001")
        try "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.0.0.5\t\(name)\n".write(toFile: dir + "/etc-hosts", atomically: false, encoding: .utf8)

        var pod = KubePod(name: name, uid: uid, qos: qos, dir: dir)
        var c = Runtime_V1_PodSandboxConfig()
        c.metadata.name = name
        c.metadata.namespace = "default"
        c.metadata.uid = uid
        c.metadata.attempt = 0
        c.hostname = name
        c.logDirectory = "\(node)/var/log/pods/default_\(name)_\(uid)"
        try fm.createDirectory(atPath: c.logDirectory, withIntermediateDirectories: true)
        c.labels = ["io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": uid, "app": name]
        c.annotations = ["kubernetes.io/config.seen": "2026-11-30T12:00:00.000000000Z", "kubernetes.io/config.source": "api"]
        c.dnsConfig.servers = ["10.96.0.10"]
        c.dnsConfig.searches = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
        c.dnsConfig.options = ["ndots:5"]
        // Every declared container port; only the one with a host port makes a portmap rule.
        c.portMappings = [Self.port(container: 8080, host: 0), Self.port(container: 80, host: Int32.random(in: 30000...32000))]
        c.linux.cgroupParent = qos.cgroupParent(root: cgroupRoot, uid: uid)
        c.linux.securityContext.namespaceOptions.network = .pod
        c.linux.securityContext.namespaceOptions.pid = .container
        c.linux.securityContext.namespaceOptions.ipc = .pod
        c.linux.securityContext.seccomp.profileType = .runtimeDefault
        c.linux.sysctls = ["kernel.shm_rmid_forced": "1"]
        // The pod's own resources (the sum of its containers), sent since KEP-1287.
        c.linux.resources.cpuPeriod = 100000
        c.linux.resources.cpuQuota = qos.cpuQuota * 2
        c.linux.resources.cpuShares = qos.cpuShares * 2
        c.linux.resources.memoryLimitInBytes = qos.memoryLimit * 2
        pod.config = c
        return pod
    }

    static func port(container: Int32, host: Int32) -> Runtime_V1_PortMapping {
        var p = Runtime_V1_PortMapping()
        p.protocol = .tcp
        p.containerPort = container
        p.hostPort = host
        return p
    }

    static func pageSizes() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/mm/hugepages")) ?? [])
            .compactMap(SysctlAndLimitTests.kubeletPageSize(directory:)).sorted()
    }

    /// generateContainerConfig: the resolved image id with what the pod spec said beside it,
    /// the kubelet's labels and annotations, its mounts, `NAME/ATTEMPT.log`, the QoS class's
    /// resources with hugepage limits for every page size, RuntimeDefault seccomp and the
    /// default masked and read-only paths.
    static func containerConfig(_ pod: KubePod, name: String, attempt: UInt32, imageID: String, userImage: String,
                                command: [String], tty: Bool = false, stdin: Bool = false) throws -> Runtime_V1_ContainerConfig {
        var c = Runtime_V1_ContainerConfig()
        c.metadata.name = name
        c.metadata.attempt = attempt
        c.image.image = imageID
        c.image.userSpecifiedImage = userImage
        c.command = command
        c.workingDir = "/"
        c.labels = ["io.kubernetes.container.name": name, "io.kubernetes.pod.name": pod.name,
                    "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": pod.uid]
        c.annotations = ["io.kubernetes.container.hash": "6c1d2f3e", "io.kubernetes.container.restartCount": "\(attempt)",
                         "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
                         "io.kubernetes.container.terminationMessagePolicy": "File", "io.kubernetes.pod.terminationGracePeriod": "30"]
        c.envs = [("KUBERNETES_SERVICE_HOST", "10.96.0.1"), ("KUBERNETES_SERVICE_PORT", "443"), ("POD_NAME", pod.name)].map {
            var kv = Runtime_V1_KeyValue()
            kv.key = $0.0
            kv.value = $0.1
            return kv
        }
        // The kubelet creates the termination-log file (empty) before the container.
        let termination = "\(pod.dir)/containers/\(name)/\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: "\(pod.dir)/containers/\(name)", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: termination, contents: nil, attributes: [.posixPermissions: 0o666])
        c.mounts = [
            mount("/work", "\(pod.dir)/volumes/kubernetes.io~empty-dir/work"),
            mount("/var/run/secrets/kubernetes.io/serviceaccount", "\(pod.dir)/volumes/kubernetes.io~projected/kube-api-access-x7k2p", readonly: true),
            mount("/etc/hosts", "\(pod.dir)/etc-hosts"),
            mount("/dev/termination-log", termination),
        ]
        c.logPath = "\(name)/\(attempt).log"
        c.stdin = stdin
        c.stdinOnce = stdin
        c.tty = tty
        var r = Runtime_V1_LinuxContainerResources()
        r.cpuPeriod = 100000
        r.cpuQuota = pod.qos.cpuQuota
        r.cpuShares = pod.qos.cpuShares
        r.memoryLimitInBytes = pod.qos.memoryLimit
        r.oomScoreAdj = pod.qos.oomScoreAdj
        r.hugepageLimits = pageSizes().map {
            var h = Runtime_V1_HugepageLimit()
            h.pageSize = $0
            h.limit = 0
            return h
        }
        // What a v2 kubelet adds (singleProcessOOMKill off); a v1 host must leave it out.
        r.unified = ["memory.oom.group": "1"]
        c.linux.resources = r
        c.linux.securityContext.namespaceOptions.network = .pod
        c.linux.securityContext.namespaceOptions.pid = .container
        c.linux.securityContext.namespaceOptions.ipc = .pod
        c.linux.securityContext.seccomp.profileType = .runtimeDefault
        c.linux.securityContext.maskedPaths = maskedPaths
        c.linux.securityContext.readonlyPaths = readonlyPaths
        return c
    }

    static func mount(_ containerPath: String, _ hostPath: String, readonly: Bool = false) -> Runtime_V1_Mount {
        var m = Runtime_V1_Mount()
        m.containerPath = containerPath
        m.hostPath = hostPath
        m.readonly = readonly
        m.propagation = .propagationPrivate
        return m
    }

    static func create(_ runtime: Client, _ pod: KubePod, _ config: Runtime_V1_ContainerConfig) async throws -> String {
        var create = Runtime_V1_CreateContainerRequest()
        create.podSandboxID = pod.id
        create.config = config
        create.sandboxConfig = pod.config
        return try await runtime.createContainer(create).containerID
    }

    static func start(_ runtime: Client, _ id: String) async throws {
        var start = Runtime_V1_StartContainerRequest()
        start.containerID = id
        _ = try await runtime.startContainer(start)
    }

    /// The kubelet's relist (PLEG) and status manager, as fast as the test can go: every pod's
    /// status, its containers and theirs. A container or pod removed between a list and its
    /// status is NotFound, which the kubelet tolerates too; any other error is recorded.
    final class Poller: Sendable {
        let errors = Mutex<[String]>([])
        let rounds = Mutex(0)

        func run(_ runtime: Client) async {
            while !Task.isCancelled {
                do {
                    for pod in try await runtime.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items {
                        var ps = Runtime_V1_PodSandboxStatusRequest()
                        ps.podSandboxID = pod.id
                        do { _ = try await runtime.podSandboxStatus(ps) } catch let e as RPCError where e.code == .notFound {}
                        var lc = Runtime_V1_ListContainersRequest()
                        lc.filter.podSandboxID = pod.id
                        for c in try await runtime.listContainers(lc).containers {
                            var cs = Runtime_V1_ContainerStatusRequest()
                            cs.containerID = c.id
                            do { _ = try await runtime.containerStatus(cs) } catch let e as RPCError where e.code == .notFound {}
                        }
                    }
                    rounds.withLock { $0 += 1 }
                } catch {
                    // Cancelled at the end of the test: the RPC in flight fails in whatever way
                    // the transport reports it (CancellationError, cancelled, or unknown with
                    // CancellationError as its cause).
                    if Task.isCancelled { return }
                    errors.withLock { $0.append("\(error)") }
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func natRules() -> String {
        (try? runCommand(["/usr/sbin/iptables-save", "-t", "nat"]).output) ?? ""
    }

    /// Every cgroup below the test's root, deepest first (runc made the kubepods levels, which
    /// the kubelet would own and remove).
    static func cgroupTree(_ root: String) -> [String] {
        var out: [String] = []
        for controller in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] {
            let base = "/sys/fs/cgroup/\(controller)\(root)"
            guard let walker = FileManager.default.enumerator(atPath: base) else { continue }
            var dirs = [base]
            while let rel = walker.nextObject() as? String {
                if (walker.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { dirs.append(base + "/" + rel) }
            }
            out += dirs.filter { FileManager.default.fileExists(atPath: $0) }
        }
        return out.sorted { $0.count > $1.count }
    }

    /// One pod per QoS class, driven through the kubelet's sequence: image status, sandbox,
    /// an init container to completion, the app container, a liveness probe through ExecSync
    /// (and one that times out), a termination message, a restart as attempt 1, image GC calls,
    /// StopPodSandbox twice, removal of the containers, then of the pod — all while a poller
    /// lists and reads statuses as the kubelet's PLEG does.
    @Test func podsOfEveryQoSClassLiveTheKubeletsSequence() async throws {
        if let why = PodNetworkTests.skipReason() { print("skipped: \(why)"); return }
        let (world, bridge) = try await SysctlAndLimitTests.bridgeWorld(
            bridgePrefix: "crik", net: 248, extraPlugins: [#"{"type": "portmap", "capabilities": {"portMappings": true}}"#])
        let crispd = world.crispd
        defer {
            world.cleanup()
            for dir in Self.cgroupTree(world.cgroupParent) { rmdir(dir) }
            PodNetworkTests.deleteBridge(bridge)
        }
        let userImage = CRI.busyboxImage
        let poller = Poller()
        try await crispd.withClients { runtime, images in
            let polling = Task { await poller.run(runtime) }
            defer { polling.cancel() }

            // EnsureImageExists: ImageStatus of what the pod spec names, then the id from it.
            var imageStatus = Runtime_V1_ImageStatusRequest()
            imageStatus.image.image = userImage
            let imageID = try await images.imageStatus(imageStatus).image.id
            #expect(imageID.hasPrefix("sha256:"))

            for qos in QOS.allCases {
                var pod = try Self.makePod("kube-\(qos.rawValue)", qos: qos, node: crispd.dir, cgroupRoot: world.cgroupParent)
                var run = Runtime_V1_RunPodSandboxRequest()
                run.config = pod.config
                pod.id = try await runtime.runPodSandbox(run).podSandboxID
                var ps = Runtime_V1_PodSandboxStatusRequest()
                ps.podSandboxID = pod.id
                let sandbox = try await runtime.podSandboxStatus(ps).status
                #expect(sandbox.state == .sandboxReady)
                #expect(sandbox.network.ip.hasPrefix("10.248."), "\(qos): \(sandbox.network.ip)")
                #expect(sandbox.labels["io.kubernetes.pod.uid"] == pod.uid)
                let hostPort = pod.config.portMappings[1].hostPort
                #expect(Self.natRules().contains("\(sandbox.network.ip):80"), "\(qos): no portmap rule for host port \(hostPort)")

                // The init container runs to completion first; it leaves a file in the emptyDir.
                let initID = try await Self.create(runtime, pod, try Self.containerConfig(
                    pod, name: "init", attempt: 0, imageID: imageID, userImage: userImage,
                    command: ["/bin/sh", "-c", "echo init ran; echo ready > /work/init-done"]))
                try await Self.start(runtime, initID)
                let initStatus = try await Lifecycle.waitExited(runtime, initID)
                #expect(initStatus.exitCode == 0 && initStatus.reason == "Completed", "\(qos): \(initStatus.reason) \(initStatus.exitCode)")
                let initLog = (try? String(contentsOfFile: pod.logDirectory + "/init/0.log", encoding: .utf8)) ?? ""
                #expect(initLog.contains(" stdout F init ran"), "\(qos): init log \(initLog)")

                let app = try Self.containerConfig(
                    pod, name: "app", attempt: 0, imageID: imageID, userImage: userImage,
                    command: ["/bin/sh", "-c", "trap 'echo bye > /dev/termination-log; exit 0' TERM; cat /work/init-done; while true; do sleep 0.1; done"])
                let appID = try await Self.create(runtime, pod, app)
                try await Self.start(runtime, appID)

                let status = try await Lifecycle.status(runtime, appID)
                #expect(status.state == .containerRunning, "\(qos): \(status.state)")
                #expect(status.image.image == userImage, "the pod's status shows what the pod spec named")
                #expect(status.image.userSpecifiedImage == userImage)
                #expect(status.imageRef == imageID)
                #expect(status.labels["io.kubernetes.container.name"] == "app")
                #expect(status.annotations["io.kubernetes.container.terminationMessagePath"] == "/dev/termination-log")
                #expect(status.logPath == pod.logDirectory + "/app/0.log" || status.logPath == "app/0.log", "\(status.logPath)")
                #expect(Set(status.mounts.map(\.containerPath)).isSuperset(of: ["/work", "/etc/hosts", "/dev/termination-log"]))
                let applied = status.resources.linux
                #expect(applied.cpuShares == qos.cpuShares && applied.cpuQuota == qos.cpuQuota && applied.cpuPeriod == 100000)
                #expect(applied.memoryLimitInBytes == qos.memoryLimit)
                // Without CAP_SYS_RESOURCE a negative score cannot be set; status says what was.
                #expect(qos.oomScoreAdj >= 0 ? applied.oomScoreAdj == qos.oomScoreAdj : applied.oomScoreAdj >= qos.oomScoreAdj)
                let v1 = !FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
                if v1 { #expect(applied.unified.isEmpty, "unified settings reported on a v1 host: \(applied.unified)") }

                // What the container sees, read the way probes and e2e specs read it.
                let checks: [(String, String)] = [
                    ("cat /work/init-done", "ready"),
                    ("cat /proc/1/oom_score_adj", "\(applied.oomScoreAdj)"),
                    ("grep Seccomp: /proc/self/status | grep -o '[0-9]'", "2"),
                    ("cat /proc/sys/kernel/shm_rmid_forced", "1"),
                    ("grep -c kube-\(qos.rawValue) /etc/hosts", "1"),
                    ("grep -c -e 'nameserver 10.96.0.10' -e 'options ndots:5' -e 'search default.svc.cluster.local' /etc/resolv.conf", "3"),
                    ("cat /var/run/secrets/kubernetes.io/serviceaccount/token", "eyJhbGciOi.kubelet-shaped.token"),
                    ("echo x > /var/run/secrets/kubernetes.io/serviceaccount/new 2>/dev/null && echo writable || echo read-only", "read-only"),
                    ("echo x > /proc/sysrq-trigger 2>/dev/null && echo writable || echo read-only", "read-only"),
                    ("cat /proc/kcore | grep -c .", "0"),
                    ("echo $KUBERNETES_SERVICE_HOST $POD_NAME", "10.96.0.1 kube-\(qos.rawValue)"),
                    ("cat /proc/sys/kernel/hostname", "kube-\(qos.rawValue)"),
                ]
                for (script, want) in checks {
                    let got = try await Lifecycle.exec(runtime, appID, script)
                    #expect(got.out == want, "\(qos): `\(script)` gave \(got.out) (exit \(got.code))")
                }
                let cgroup = pod.config.linux.cgroupParent + "/crisp-" + appID
                if v1, FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cpu" + cgroup) {
                    #expect(readSmallFile("/sys/fs/cgroup/cpu\(cgroup)/cpu.shares") == "\(qos.cpuShares)\n")
                }

                // Liveness probe: exec with the probe's timeout; one that hangs is DeadlineExceeded.
                var probe = Runtime_V1_ExecSyncRequest()
                probe.containerID = appID
                probe.cmd = ["/bin/cat", "/work/init-done"]
                probe.timeout = 1
                #expect(try await runtime.execSync(probe).exitCode == 0)
                probe.cmd = ["/bin/sleep", "30"]
                do {
                    _ = try await runtime.execSync(probe)
                    Issue.record("\(qos): a hung probe did not time out")
                } catch let e as RPCError {
                    #expect(e.code == .deadlineExceeded, "\(qos): \(e)")
                }

                // Image GC: the filesystem, the list, and RemoveImage of an image in use refused.
                let fs = try await images.imageFsInfo(Runtime_V1_ImageFsInfoRequest())
                #expect(!fs.imageFilesystems.isEmpty && fs.imageFilesystems[0].usedBytes.value > 0)
                #expect(try await images.listImages(Runtime_V1_ListImagesRequest()).images.contains { $0.id == imageID })
                var removeImage = Runtime_V1_RemoveImageRequest()
                removeImage.image.image = imageID
                do {
                    _ = try await images.removeImage(removeImage)
                    Issue.record("RemoveImage of an image in use was accepted")
                } catch let e as RPCError {
                    #expect(e.code == .failedPrecondition, "\(e)")
                }

                // The container is killed (a liveness failure): its termination message is in the
                // kubelet's file, then the kubelet creates attempt 1 beside the exited attempt 0.
                var stop = Runtime_V1_StopContainerRequest()
                stop.containerID = appID
                stop.timeout = 30
                _ = try await runtime.stopContainer(stop)
                let stopped = try await Lifecycle.status(runtime, appID)
                #expect(stopped.state == .containerExited && stopped.exitCode == 0 && stopped.reason == "Completed",
                        "\(qos): \(stopped.reason) \(stopped.exitCode)")
                let termination = try #require(app.mounts.first { $0.containerPath == "/dev/termination-log" }?.hostPath)
                #expect(readSmallFile(termination) == "bye\n")
                let appLog = (try? String(contentsOfFile: pod.logDirectory + "/app/0.log", encoding: .utf8)) ?? ""
                #expect(appLog.contains(" stdout F ready"), "\(qos): app log \(appLog)")

                let again = try await Self.create(runtime, pod, try Self.containerConfig(
                    pod, name: "app", attempt: 1, imageID: imageID, userImage: userImage, command: ["/bin/sleep", "3600"]))
                try await Self.start(runtime, again)
                var lc = Runtime_V1_ListContainersRequest()
                lc.filter.podSandboxID = pod.id
                lc.filter.labelSelector = ["io.kubernetes.container.name": "app"]
                let attempts = try await runtime.listContainers(lc).containers
                #expect(Set(attempts.map(\.metadata.attempt)) == [0, 1])
                #expect(attempts.first { $0.metadata.attempt == 1 }?.state == .containerRunning)
                #expect(FileManager.default.fileExists(atPath: pod.logDirectory + "/app/1.log"))

                // The kubelet's pod teardown: StopPodSandbox (twice: the sync loop retries), the
                // containers removed by its GC, then RemovePodSandbox, then a late StopPodSandbox.
                var stopPod = Runtime_V1_StopPodSandboxRequest()
                stopPod.podSandboxID = pod.id
                _ = try await runtime.stopPodSandbox(stopPod)
                _ = try await runtime.stopPodSandbox(stopPod)
                #expect(try await runtime.podSandboxStatus(ps).status.state == .sandboxNotready)
                #expect(!Self.natRules().contains("\(sandbox.network.ip):80"), "\(qos): portmap rule left after StopPodSandbox")
                for id in [initID, appID, again] {
                    var rc = Runtime_V1_RemoveContainerRequest()
                    rc.containerID = id
                    _ = try await runtime.removeContainer(rc)
                }
                var removePod = Runtime_V1_RemovePodSandboxRequest()
                removePod.podSandboxID = pod.id
                _ = try await runtime.removePodSandbox(removePod)
                _ = try await runtime.stopPodSandbox(stopPod)
                _ = try await runtime.removePodSandbox(removePod)
                for dir in Self.cgroupTree(world.cgroupParent) {
                    let below = dir.components(separatedBy: world.cgroupParent).last ?? ""
                    #expect(!below.split(separator: "/").contains { $0.hasPrefix("crisp-") }, "cgroup left: \(dir)")
                }
            }
            polling.cancel()
            _ = await polling.value
        }
        #expect(poller.errors.withLock { $0 }.isEmpty, "relist errors: \(poller.errors.withLock { $0 })")
        #expect(poller.rounds.withLock { $0 } > 0)
        world.assertNoLeaks()
    }

    /// `kubectl run -it` and `stdin: true` containers: conmon keeps stdin open, the container
    /// runs, its output reaches the log (a terminal writes everything to stdout).
    @Test(arguments: [(tty: true, stdin: true), (tty: false, stdin: true), (tty: true, stdin: false)])
    func stdinAndTerminalVariantsRun(_ variant: (tty: Bool, stdin: Bool)) async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await Lifecycle.world()
        defer {
            world.cleanup()
            for dir in Self.cgroupTree(world.cgroupParent) { rmdir(dir) }
        }
        try await world.crispd.withClients { runtime, images in
            var imageStatus = Runtime_V1_ImageStatusRequest()
            imageStatus.image.image = CRI.busyboxImage
            let imageID = try await images.imageStatus(imageStatus).image.id
            var pod = try Self.makePod("kube-io", qos: .besteffort, node: world.crispd.dir, cgroupRoot: world.cgroupParent)
            pod.config.linux.securityContext.namespaceOptions.network = .node
            pod.config.portMappings = []
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = pod.config
            pod.id = try await runtime.runPodSandbox(run).podSandboxID
            let id = try await Self.create(runtime, pod, try Self.containerConfig(
                pod, name: "shell", attempt: 0, imageID: imageID, userImage: CRI.busyboxImage,
                command: ["/bin/sh", "-c", "echo started; [ -t 1 ] && echo terminal; exec sleep 3600"], tty: variant.tty, stdin: variant.stdin))
            try await Self.start(runtime, id)
            #expect(try await Lifecycle.status(runtime, id).state == .containerRunning)
            #expect(try await Lifecycle.exec(runtime, id, "echo alive").out == "alive")
            let log = pod.logDirectory + "/shell/0.log"
            let deadline = ContinuousClock.now + .seconds(10)
            var text = ""
            while !text.contains("started"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            }
            #expect(text.contains(" stdout ") && text.contains("started"), "\(variant): \(text)")
            #expect(text.contains("terminal") == variant.tty, "\(variant): \(text)")
            try await Lifecycle.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }
}
