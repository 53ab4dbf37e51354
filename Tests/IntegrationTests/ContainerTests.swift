import IntegrationSupport
import CRIAPI
import CrispCore
import CrispStorage
import CrispOS
import CrispTestSupport
import Foundation
import GRPCCore
import Logging
import Testing

/// Containers through a real crispd, conmon and runc, from a busybox image seeded into crispd's
/// storage before it starts (pulling is covered by the image tests).
@Suite(.serialized) struct ContainerTests {
    @Test func containerLifecycleLogsExecAndExitCodes() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let crispd = try CrispdProcess()
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try await CRI.seedBusybox(root: crispd.root, runRoot: crispd.runRoot)
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
        defer { world.cleanup() }

        try await crispd.withClients { runtime, _ in
            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("app", cgroupParent: cgroupParent)
            run.config.logDirectory = crispd.dir + "/pod-logs"
            let pod = try await runtime.runPodSandbox(run).podSandboxID

            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = pod
            create.sandboxConfig = run.config
            create.config = CRI.containerConfig("main", ["/bin/sh", "-c",
                "trap 'exit 0' TERM; echo hi; echo \"$FROM_IMAGE $FROM_REQUEST $(pwd)\"; while true; do echo tick; sleep 0.2; done"],
                logPath: "main.log")
            create.config.linux.resources.cpuShares = 512
            create.config.linux.resources.oomScoreAdj = 100
            let main = try await runtime.createContainer(create).containerID
            create.config.linux.resources = Runtime_V1_LinuxContainerResources()
            var statusReq = Runtime_V1_ContainerStatusRequest()
            statusReq.containerID = main
            #expect(try await runtime.containerStatus(statusReq).status.state == .containerCreated)

            var start = Runtime_V1_StartContainerRequest()
            start.containerID = main
            _ = try await runtime.startContainer(start)
            let running = try await runtime.containerStatus(statusReq).status
            #expect(running.state == .containerRunning)
            #expect(running.user.linux.uid == 0 && running.user.linux.gid == 0 && running.user.linux.supplementalGroups == [0])
            #expect(running.startedAt > 0)
            #expect(running.logPath == crispd.dir + "/pod-logs/main.log")

            var exec = Runtime_V1_ExecSyncRequest()
            exec.containerID = main
            exec.cmd = ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]
            exec.timeout = 10
            let r = try await runtime.execSync(exec)
            #expect(r.exitCode == 3)
            #expect(String(decoding: r.stdout, as: UTF8.self) == "out\n")
            #expect(String(decoding: r.stderr, as: UTF8.self) == "err\n")
            exec.cmd = ["/bin/sleep", "30"]
            exec.timeout = 1
            do {
                _ = try await runtime.execSync(exec)
                Issue.record("exec did not time out")
            } catch let e as RPCError {
                #expect(e.code == .deadlineExceeded)
            }
            // In a container whose PID 1 never reaps (as critest's), the timed-out command must be
            // killed while runc can still reap it: no process and no zombie (`[sleep]`) is left.
            let noreap = try await CRI.startContainer(runtime, pod: (pod, run.config), "noreap", ["/bin/sleep", "3600"])
            var timed = Runtime_V1_ExecSyncRequest()
            timed.containerID = noreap
            timed.cmd = ["/bin/sleep", "30"]
            timed.timeout = 1
            await #expect(throws: RPCError.self) { _ = try await runtime.execSync(timed) }
            timed.cmd = ["/bin/sh", "-c", "ps -o args | grep -c -e '^sleep 30' -e '^\\[sleep\\]' || true"]
            timed.timeout = 10
            #expect(String(decoding: try await runtime.execSync(timed).stdout, as: UTF8.self) == "0\n")
            var removeNoreap = Runtime_V1_RemoveContainerRequest()
            removeNoreap.containerID = noreap
            _ = try await runtime.removeContainer(removeNoreap)

            var statsReq = Runtime_V1_ContainerStatsRequest()
            statsReq.containerID = main
            let first = try await runtime.containerStats(statsReq).stats
            #expect(first.attributes.id == main)
            #expect(first.cpu.usageCoreNanoSeconds.value > 0)
            #expect(first.memory.workingSetBytes.value > 0)
            #expect(first.memory.usageBytes.value >= first.memory.workingSetBytes.value)
            #expect(first.writableLayer.fsID.mountpoint.hasPrefix(crispd.root))
            try await Task.sleep(for: .milliseconds(200))
            let second = try await runtime.containerStats(statsReq).stats
            #expect(second.cpu.hasUsageNanoCores)
            var listStats = Runtime_V1_ListContainerStatsRequest()
            listStats.filter.podSandboxID = pod
            #expect(try await runtime.listContainerStats(listStats).stats.map(\.attributes.id) == [main])

            var update = Runtime_V1_UpdateContainerResourcesRequest()
            update.containerID = main
            update.linux.memoryLimitInBytes = 64 << 20
            _ = try await runtime.updateContainerResources(update)
            let limit = try String(contentsOfFile: "/sys/fs/cgroup/memory\(cgroupParent)/crisp-\(main)/memory.limit_in_bytes", encoding: .utf8)
            #expect(limit.trimmingCharacters(in: .whitespacesAndNewlines) == "\(64 << 20)")
            // ContainerStatus reports the resources as created and then updated.
            let resources = try await runtime.containerStatus(statusReq).status.resources.linux
            #expect(resources.cpuShares == 512 && resources.oomScoreAdj == 100)
            #expect(resources.memoryLimitInBytes == 64 << 20 && resources.memorySwapLimitInBytes == 64 << 20)

            let log = (try? String(contentsOfFile: running.logPath, encoding: .utf8)) ?? ""
            #expect(log.contains(" stdout F hi\n"))
            // Log rotation: the kubelet renames the file, then asks for a reopen.
            try FileManager.default.moveItem(atPath: running.logPath, toPath: running.logPath + ".1")
            var reopen = Runtime_V1_ReopenContainerLogRequest()
            reopen.containerID = main
            _ = try await runtime.reopenContainerLog(reopen)
            // The kubelet reads the new file right after the call returns.
            #expect(FileManager.default.fileExists(atPath: running.logPath))
            let rotated = ContinuousClock.now + .seconds(10)
            while !((try? String(contentsOfFile: running.logPath, encoding: .utf8)) ?? "").contains(" stdout F tick"),
                  ContinuousClock.now < rotated {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(((try? String(contentsOfFile: running.logPath, encoding: .utf8)) ?? "").contains(" stdout F tick"))
            #expect(log.contains(" stdout F yes yes /tmp\n"))
            #expect(!log.isEmpty)

            create.config = CRI.containerConfig("fails", ["/bin/sh", "-c", "exit 7"], logPath: "fails.log")
            let fails = try await runtime.createContainer(create).containerID
            start.containerID = fails
            _ = try await runtime.startContainer(start)

            var stop = Runtime_V1_StopContainerRequest()
            stop.containerID = main
            stop.timeout = 5
            _ = try await runtime.stopContainer(stop)
            _ = try await runtime.stopContainer(stop) // idempotent
            var unknown = Runtime_V1_StopContainerRequest()
            unknown.containerID = String(repeating: "e", count: 64)
            _ = try await runtime.stopContainer(unknown) // as CRI-O: a container already gone is stopped
            let stopped = try await runtime.containerStatus(statusReq).status
            #expect(stopped.state == .containerExited)
            #expect(stopped.exitCode == 0)
            #expect(stopped.reason == "Completed")

            statusReq.containerID = fails
            let deadline = ContinuousClock.now + .seconds(10)
            var failed = try await runtime.containerStatus(statusReq).status
            while failed.state != .containerExited, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                failed = try await runtime.containerStatus(statusReq).status
            }
            #expect(failed.exitCode == 7)
            #expect(failed.reason == "Error")

            var list = Runtime_V1_ListContainersRequest()
            list.filter.podSandboxID = pod
            #expect(try await runtime.listContainers(list).containers.count == 2)
            list.filter.state.state = .containerRunning
            #expect(try await runtime.listContainers(list).containers.isEmpty)

            var remove = Runtime_V1_RemoveContainerRequest()
            remove.containerID = fails
            _ = try await runtime.removeContainer(remove)
            _ = try await runtime.removeContainer(remove)
            // Removing the pod removes the container left in it.
            try await CRI.removePod(runtime, pod)
            #expect(try await runtime.listContainers(Runtime_V1_ListContainersRequest()).containers.isEmpty)
        }
        world.assertNoLeaks()
    }

    @Test func createInAMissingPodOrWithAMissingImageFails() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let crispd = try CrispdProcess()
        let cgroupParent = "/crisp-it-\(UUID().uuidString.prefix(8).lowercased())"
        try await crispd.start(extra: ["--runtimes", "runc:/usr/sbin/runc:\(crispd.dir)/runc-root"])
        let world = CRIWorld(crispd: crispd, cgroupParent: cgroupParent)
        defer { world.cleanup() }
        try await crispd.withClients { runtime, _ in
            var create = Runtime_V1_CreateContainerRequest()
            create.podSandboxID = String(repeating: "0", count: 64)
            create.config = CRI.containerConfig("x", ["/bin/true"], logPath: "x.log")
            await #expect(throws: RPCError.self) { _ = try await runtime.createContainer(create) }

            var run = Runtime_V1_RunPodSandboxRequest()
            run.config = CRI.podConfig("noimage", cgroupParent: cgroupParent)
            create.podSandboxID = try await runtime.runPodSandbox(run).podSandboxID
            do {
                _ = try await runtime.createContainer(create)
                Issue.record("created a container from an image that is not there")
            } catch let e as RPCError {
                #expect(e.code == .notFound)
                #expect(e.message.contains(CRI.busyboxImage))
            }
            var removePod = Runtime_V1_RemovePodSandboxRequest()
            removePod.podSandboxID = create.podSandboxID
            _ = try await runtime.removePodSandbox(removePod)
        }
        world.assertNoLeaks()
    }

    /// critest's privileged and mount-propagation specs: a privileged container gets every
    /// capability crispd itself may pass on (this host's root lacks CAP_SYS_RESOURCE), a mount it
    /// makes under a bidirectional volume shows on the host, and host-to-container propagation from
    /// a private host mount is refused.
    @Test func privilegedContainerAndBidirectionalPropagation() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        // One shared and one private bind mount of their own, whatever the host's / is.
        let shared = world.crispd.dir + "/shared", priv = world.crispd.dir + "/private"
        for (dir, mode) in [(shared, "--make-rshared"), (priv, "--make-rprivate")] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            #expect(try runCommand(["/bin/mount", "--bind", dir, dir]).status == 0)
            #expect(try runCommand(["/bin/mount", mode, dir]).status == 0)
        }
        defer { for dir in [shared, priv] { _ = try? runCommand(["/bin/umount", "-R", dir]) } }

        try await world.crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "privileged", world: world) {
                $0.linux.securityContext.privileged = true
            }
            var volume = Runtime_V1_Mount()
            volume.hostPath = shared
            volume.containerPath = "/vol"
            volume.propagation = .propagationBidirectional
            let id = try await CRI.startContainer(runtime, pod: pod, "priv", ["/bin/sleep", "3600"]) {
                $0.linux.securityContext.privileged = true
                $0.mounts = [volume]
            }
            #expect(try await CRI.status(runtime, id).mounts.map(\.propagation) == [.propagationBidirectional])

            let inside = try await CRI.exec(runtime, id, "grep CapEff /proc/self/status").out
            let bounding = (readSmallFile("/proc/self/status") ?? "").split(separator: "\n").first { $0.hasPrefix("CapBnd:") }
                .map { $0.dropFirst(7).trimmingCharacters(in: .whitespaces) }
            #expect(inside.dropFirst(7).trimmingCharacters(in: .whitespacesAndNewlines) == bounding)

            let mounted = try await CRI.exec(runtime, id, "mkdir -p /vol/inner && mount -t tmpfs crisp-prop /vol/inner 2>&1")
            #expect(mounted.code == 0, "\(mounted.out)")
            let hostMounts = readSmallFile("/proc/self/mountinfo") ?? ""
            #expect(hostMounts.contains(" \(shared)/inner "), "the container's mount did not propagate to the host")

            volume.hostPath = priv
            volume.propagation = .propagationHostToContainer
            do {
                _ = try await CRI.startContainer(runtime, pod: pod, "slave", ["/bin/sleep", "3600"]) { $0.mounts = [volume] }
                Issue.record("host-to-container propagation from a private mount was accepted")
            } catch let e as RPCError {
                #expect(e.code == .failedPrecondition)
                #expect(e.message.contains(priv))
            }
            try await CRI.removePod(runtime, pod.id)
        }
        for dir in [shared, priv] { _ = try? runCommand(["/bin/umount", "-R", dir]) }
        world.assertNoLeaks()
    }

    /// The image declares the volume /data. With `image_volumes = bind` it is a directory of the
    /// container's own, bind-mounted, gone with the container; with the default `mkdir` it is a
    /// plain directory in the container's layer; with `ignore` it is not there.
    @Test(arguments: ["bind", "mkdir", "ignore"])
    func imageVolumesFollowTheSetting(_ mode: String) async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world(extra: ["--image-volumes", mode])
        defer { world.cleanup() }
        let crispd = world.crispd
        try await crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "volumes", world: world)
            let id = try await CRI.startContainer(runtime, pod: pod, "vol", ["/bin/sleep", "3600"])
            let out = try await CRI.exec(runtime, id,
                "[ -d /data ] && echo dir; grep -c ' /data ' /proc/self/mountinfo; echo hi > /data/f 2>/dev/null; true").out
            let hostFile = "\(crispd.root)/containers/\(id)/volumes/0/f"
            switch mode {
            case "bind":
                #expect(out == "dir\n1")
                #expect(readSmallFile(hostFile) == "hi\n")
            case "mkdir":
                #expect(out == "dir\n0")
                #expect(!FileManager.default.fileExists(atPath: hostFile))
            default:
                #expect(out == "0")
            }
            var removePod = Runtime_V1_RemovePodSandboxRequest()
            removePod.podSandboxID = pod.id
            _ = try await runtime.removePodSandbox(removePod)
            #expect(!FileManager.default.fileExists(atPath: "\(crispd.root)/containers/\(id)"))
        }
        world.assertNoLeaks()
    }

    /// Status advertises the handlers (the default one also under the empty name) with their
    /// recursive read-only support and the supplemental-groups policy; both then behave as
    /// advertised.
    @Test func recursiveReadOnlyMountsAndSupplementalGroupsPolicy() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world()
        defer { world.cleanup() }
        // A host directory with a tmpfs mounted inside it.
        let volume = world.crispd.dir + "/rro", sub = world.crispd.dir + "/rro/sub"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        #expect(try runCommand(["/bin/mount", "-t", "tmpfs", "crisp-rro", sub]).status == 0)
        defer { _ = try? runCommand(["/bin/umount", sub]) }
        let runcHasRRO = try runCommand(["/usr/sbin/runc", "features"]).output.contains("\"rro\"")

        try await world.crispd.withClients { runtime, _ in
            let status = try await runtime.status(Runtime_V1_StatusRequest())
            #expect(status.features.supplementalGroupsPolicy)
            // The default handler (runc) also appears under the empty name; crun 1.8 has no
            // `features` command and is advertised without recursive read-only mounts.
            let advertised = Dictionary(status.runtimeHandlers.map { ($0.name, $0.features.recursiveReadOnlyMounts) }) { a, _ in a }
            #expect(advertised[""] == runcHasRRO && advertised["runc"] == runcHasRRO)

            let pod = try await CRI.runPod(runtime, "rro", world: world)
            var mount = Runtime_V1_Mount()
            mount.hostPath = volume
            mount.containerPath = "/mnt"
            mount.readonly = true
            let touch = "{ echo x > /mnt/sub/f; } 2>&1"

            // Plain read-only: the submount stays writable.
            let plain = try await CRI.startContainer(runtime, pod: pod, "plain", ["/bin/sleep", "3600"]) { $0.mounts = [mount] }
            #expect(try await CRI.exec(runtime, plain, touch).code == 0)
            if runcHasRRO {
                mount.recursiveReadOnly = true
                let rro = try await CRI.startContainer(runtime, pod: pod, "rro", ["/bin/sleep", "3600"]) { $0.mounts = [mount] }
                let (code, output) = try await CRI.exec(runtime, rro, touch)
                #expect(code != 0 && output.contains("Read-only file system"), "\(output)")
                #expect(try await CRI.status(runtime, rro).mounts.first?.recursiveReadOnly == true)
                mount.readonly = false
                do {
                    _ = try await CRI.startContainer(runtime, pod: pod, "rro-rw", ["/bin/sleep", "3600"]) { $0.mounts = [mount] }
                    Issue.record("a recursive read-only mount that is not read-only was accepted")
                } catch let e as RPCError {
                    #expect(e.code == .invalidArgument)
                }
            } else {
                print("runc on this host has no rro mount option; the recursive part is skipped")
            }

            // nobody (65534) is listed in the image's group audio (29).
            for strict in [false, true] {
                let id = try await CRI.startContainer(runtime, pod: pod, strict ? "strict" : "merge", ["/bin/sleep", "3600"]) {
                    $0.linux.securityContext.runAsUser.value = 65534
                    $0.linux.securityContext.supplementalGroups = [1234]
                    $0.linux.securityContext.supplementalGroupsPolicy = strict ? .strict : .merge
                }
                let want: [Int64] = strict ? [1234, 65534] : [29, 1234, 65534]
                let user = try await CRI.status(runtime, id).user.linux
                #expect(user.uid == 65534 && user.gid == 65534 && user.supplementalGroups.sorted() == want)
                let groups = try await CRI.exec(runtime, id, "grep ^Groups: /proc/self/status").out
                #expect(groups.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).dropFirst().compactMap { Int64($0) } == want)
            }
            try await CRI.removePod(runtime, pod.id)
        }
        _ = try? runCommand(["/bin/umount", sub])
        world.assertNoLeaks()
    }

    /// `log_size_max`: conmon truncates the CRI log once it would pass the limit, so a chatty
    /// container's log file stays under it.
    @Test func logSizeMaxBoundsTheLogFile() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let world = try await CRI.world(extra: ["--log-size-max", "4096"])
        defer { world.cleanup() }
        try await world.crispd.withClients { runtime, _ in
            let pod = try await CRI.runPod(runtime, "chatty", world: world)
            // About 30 KB of output, then an exit.
            let id = try await CRI.startContainer(runtime, pod: pod, "chatty", ["/bin/sh", "-c",
                "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done"])
            _ = try await CRI.waitExited(runtime, id)
            let log = readSmallFile(pod.config.logDirectory + "/chatty.log") ?? ""
            #expect(!log.isEmpty && log.utf8.count <= 4096, "log file is \(log.utf8.count) bytes")
            #expect(log.contains(" stdout F line 1999\n"), "the newest lines are kept")
            try await CRI.removePod(runtime, pod.id)
        }
        world.assertNoLeaks()
    }
}
