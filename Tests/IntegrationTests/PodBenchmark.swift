import IntegrationSupport
import CRIAPI
import CrispRuntime
import CrispOS
import CrispTestSupport
import Foundation
import Testing

/// Used by scripts/bench-pods.sh, not by `make test`: CRISP_BENCH_N iterations of the pod and
/// container lifecycle through crispd (CRISPD_BIN, a release build), each followed by the limit
/// (`runc run -d` and `runc delete -f` of an equivalent bundle) and the floor (conmon with `runc
/// create`, then `runc start`), so that all three see the same machine. Writes one line per
/// measure ("name ms ms ms ...") to CRISP_BENCH_OUT, plus crispd's RSS idle and with 20 pods.
@Suite(.enabled(if: isRoot && ProcessInfo.processInfo.environment["CRISP_BENCH_OUT"] != nil,
                "only run by scripts/bench-pods.sh"))
struct PodBenchmark {
    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func rssKB(_ pid: Int32) -> Int {
        let status = readSmallFile("/proc/\(pid)/status") ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    static func runc(_ args: [String]) throws {
        var o = Spawn.Options(path: "/usr/sbin/runc", arguments: args)
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        o.descriptors = [0: null, 1: null, 2: null]
        let status = try Spawn.start(o).waitBlocking()
        guard status == 0 else { throw TestFailure("runc \(args.joined(separator: " ")) exited \(status)") }
    }

    @Test func lifecycle() async throws {
        if let why = CRI.skipReason() { print("skipped: \(why)"); return }
        let env = ProcessInfo.processInfo.environment
        let out = try #require(env["CRISP_BENCH_OUT"])
        let n = Int(env["CRISP_BENCH_N"] ?? "") ?? 50
        // Trace level: crispd logs each RPC's own duration, which leaves out this (debug-built)
        // client's share of the round trip.
        let world = try await CRI.world(extra: ["--log-level", "trace"])
        defer { world.cleanup() }
        var samples: [String: [Double]] = [:]
        try await Task.sleep(for: .seconds(1))
        let idleRSS = Self.rssKB(world.crispd.processIdentifier)

        // The limit: the same busybox root filesystem as a plain OCI bundle, run by runc alone.
        let bundle = world.crispd.dir + "/bare-bundle"
        try FileManager.default.createDirectory(atPath: bundle + "/rootfs/bin", withIntermediateDirectories: true)
        let busybox = ["/bin/busybox", "/usr/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/bin/busybox"
        try FileManager.default.copyItem(atPath: busybox, toPath: bundle + "/rootfs/bin/busybox")
        try FileManager.default.createSymbolicLink(atPath: bundle + "/rootfs/bin/sleep", withDestinationPath: "busybox")
        for d in ["proc", "sys", "dev", "etc", "tmp"] {
            try FileManager.default.createDirectory(atPath: bundle + "/rootfs/" + d, withIntermediateDirectories: true)
        }
        let bareRoot = world.crispd.dir + "/bare-runc-root"
        var specInput = ContainerSpecInput(id: "bare", rootfs: bundle + "/rootfs")
        specInput.process.command = ["/bin/sleep", "600"]
        specInput.defaults.minimumOOMScoreAdj = 0
        specInput.sandbox.hostNetwork = true
        specInput.sandbox.cgroupParent = world.cgroupParent
        let (spec, _) = try SpecBuilder().build(specInput)
        try Bundle.writeJSON(spec, to: bundle + "/config.json")
        // What crisp must drive for one container whatever it does itself: conmon running
        // `runc create`, then `runc start` (the CRI splits create from start), on the same bundle.
        let handler = RuntimeHandler(name: "runc", path: "/usr/sbin/runc", root: bareRoot)
        let conmon = Conmon(path: "/usr/bin/conmon")
        samples = try await world.crispd.withClients { runtime, _ in
            var samples: [String: [Double]] = [:]
            var conmonPIDs: [Int32] = []
            // Warm-up (first mounts, first runc start), not measured.
            for i in 0..<(n + 2) {
                var t = ContinuousClock.now
                let pod = try await CRI.runPod(runtime, "bench\(i)", world: world)
                let run = ContinuousClock.now - t
                t = ContinuousClock.now
                let c = try await CRI.startContainer(runtime, pod: pod, "c", ["/bin/sleep", "600"])
                let start = ContinuousClock.now - t
                t = ContinuousClock.now
                var stop = Runtime_V1_StopContainerRequest()
                stop.containerID = c
                stop.timeout = 0
                _ = try await runtime.stopContainer(stop)
                var remove = Runtime_V1_RemoveContainerRequest()
                remove.containerID = c
                _ = try await runtime.removeContainer(remove)
                let stopRemove = ContinuousClock.now - t
                t = ContinuousClock.now
                try await CRI.removePod(runtime, pod.id)
                let podDown = ContinuousClock.now - t
                // The limits, interleaved with crisp's iterations so that both see the same machine.
                let bareID = "bare-\(i)"
                var tb = ContinuousClock.now
                try Self.runc(["--root", bareRoot, "run", "-d", "--bundle", bundle, bareID])
                let bareRun = ContinuousClock.now - tb
                tb = ContinuousClock.now
                try Self.runc(["--root", bareRoot, "delete", "-f", bareID])
                let bareDelete = ContinuousClock.now - tb
                if i >= 2 {
                    samples["runc run -d", default: []].append(Self.ms(bareRun))
                    samples["runc run -d + delete -f", default: []].append(Self.ms(bareRun + bareDelete))
                }
                let partsID = "parts-\(i)"
                var options = Conmon.CreateOptions(id: partsID, name: partsID, handler: handler, bundle: bundle,
                                                   exitDirectory: world.crispd.dir + "/bare-exits",
                                                   logPath: world.crispd.dir + "/bare-\(i).log",
                                                   socketDirectory: world.crispd.dir + "/bare-attach")
                options.logSizeMax = -1
                try FileManager.default.createDirectory(atPath: options.exitDirectory, withIntermediateDirectories: true)
                let tp = ContinuousClock.now
                let created = try await conmon.create(options)
                try await RuncCLI(handler: handler).start(id: partsID)
                let parts = ContinuousClock.now - tp
                conmonPIDs.append(created.conmonPID)
                try Self.runc(["--root", bareRoot, "delete", "-f", partsID])
                if i >= 2 {
                    samples["conmon + runc create + runc start", default: []].append(Self.ms(parts))
                }
                guard i >= 2 else { continue }
                samples["RunPodSandbox", default: []].append(Self.ms(run))
                samples["CreateContainer+StartContainer", default: []].append(Self.ms(start))
                samples["StopContainer+RemoveContainer", default: []].append(Self.ms(stopRemove))
                samples["StopPodSandbox+RemovePodSandbox", default: []].append(Self.ms(podDown))
                samples["crisp pod+container start", default: []].append(Self.ms(run + start))
                samples["crisp whole lifecycle", default: []].append(Self.ms(run + start + stopRemove + podDown))
            }
            // RSS with 20 pods, each running one container.
            var pods: [String] = []
            for i in 0..<20 {
                let pod = try await CRI.runPod(runtime, "rss\(i)", world: world)
                _ = try await CRI.startContainer(runtime, pod: pod, "c", ["/bin/sleep", "600"])
                pods.append(pod.id)
            }
            samples["rss-20-pods-kB", default: []].append(Double(Self.rssKB(world.crispd.processIdentifier)))
            for p in pods { try await CRI.removePod(runtime, p) }
            // conmon exits once it has recorded the container's exit; wait for it so no leak is seen.
            for pid in conmonPIDs where pid > 0 {
                let deadline = ContinuousClock.now + .seconds(5)
                while kill(pid, 0) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            }
            return samples
        }

        samples["rss-idle-kB"] = [Double(idleRSS)]
        // crispd's own time per RPC, in order; the first two pods are warm-ups, as above.
        var server: [String: [Double]] = [:]
        for line in (readSmallFile(world.crispd.logPath) ?? "").split(separator: "\n") where line.contains("msg=rpc ") {
            let fields = Dictionary(line.split(separator: " ").compactMap { f -> (String, String)? in
                let kv = f.split(separator: "=", maxSplits: 1)
                return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
            }, uniquingKeysWith: { $1 })
            guard let method = fields["method"], let us = fields["us"].flatMap(Double.init) else { continue }
            server[method, default: []].append(us / 1000)
        }
        let pods = server["RunPodSandbox"] ?? [], creates = server["CreateContainer"] ?? [], starts = server["StartContainer"] ?? []
        if pods.count >= n + 2, creates.count >= n + 2, starts.count >= n + 2 {
            for i in 2..<(n + 2) {
                samples["crispd-side RunPodSandbox", default: []].append(pods[i])
                samples["crispd-side CreateContainer+StartContainer", default: []].append(creates[i] + starts[i])
                samples["crispd-side pod+container start", default: []].append(pods[i] + creates[i] + starts[i])
            }
        }
        let text = samples.keys.sorted().map { k in ([k.replacingOccurrences(of: " ", with: "_")] + samples[k]!.map { String(format: "%.3f", $0) }).joined(separator: " ") }
        try (text.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        world.assertNoLeaks()
    }
}
