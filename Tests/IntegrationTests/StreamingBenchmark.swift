import IntegrationSupport
import CRIAPI
import CrispOS
import CrispStreaming
import CrispTestSupport
import Foundation
import Glibc
import Testing

/// Used by scripts/bench-streaming.sh, not by `make test`: exec round trips of `true` through
/// SPDY and WebSocket next to ExecSync and a bare `runc exec` in the same container (the limit),
/// stdin → `cat` → stdout throughput next to `cat` through a pipe on the host (the limit), and
/// crispd's RSS with 50 sessions open. Each measure is one line "name value value ..." in
/// CRISP_BENCH_OUT.
@Suite(.enabled(if: isRoot && ProcessInfo.processInfo.environment["CRISP_BENCH_OUT"] != nil,
                "only run by scripts/bench-streaming.sh"))
struct StreamingBenchmark {
    @Test func streaming() async throws {
        let env = ProcessInfo.processInfo.environment
        let out = try #require(env["CRISP_BENCH_OUT"])
        let n = Int(env["CRISP_BENCH_N"] ?? "") ?? 30
        let megabytes = Int(env["CRISP_BENCH_MB"] ?? "") ?? 256
        let collected = StreamingTests.Box<[String]>([])
        try await StreamingTests.withContainer("bench") { runtime, world, _, id in
            let clock = ContinuousClock()
            var lines: [String] = []
            var samples: [String: [Double]] = [:]
            let runcRoot = world.crispd.dir + "/runc-root"
            for i in 0..<(n + 2) {
                let spdy = try await clock.measure {
                    let r = try await StreamingTests.exec(runtime, id, ["true"], transport: .spdy)
                    await r.read()
                }
                let ws = try await clock.measure {
                    let r = try await StreamingTests.exec(runtime, id, ["true"], transport: .webSocket)
                    await r.read()
                }
                let sync = try await clock.measure {
                    var r = Runtime_V1_ExecSyncRequest()
                    r.containerID = id
                    r.cmd = ["true"]
                    _ = try await runtime.execSync(r)
                }
                let bare = try clock.measure { try PodBenchmark.runc(["--root", runcRoot, "exec", id, "true"]) }
                guard i >= 2 else { continue }
                samples["exec_spdy", default: []].append(PodBenchmark.ms(spdy))
                samples["exec_websocket", default: []].append(PodBenchmark.ms(ws))
                samples["execsync", default: []].append(PodBenchmark.ms(sync))
                samples["runc_exec", default: []].append(PodBenchmark.ms(bare))
            }
            for (k, v) in samples { lines.append(k + " " + v.map { String(format: "%.2f", $0) }.joined(separator: " ")) }

            // Throughput: MB through stdin → cat → stdout, both transports.
            let total = megabytes << 20
            for transport in StreamTransportKind.allCases {
                let s = try await StreamingTests.exec(runtime, id, ["cat"], transport: transport, stdin: true)
                let start = clock.now
                let counter = StreamingTests.Box(0)
                s.stdoutSink = { counter.value += $0.count }
                let client = s.client
                let sender = Task {
                    let block = [UInt8](repeating: 0x5a, count: 256 << 10)
                    var sent = 0
                    while sent < total {
                        try await client.send(stdin: block)
                        sent += block.count
                    }
                    try await client.closeStdin()
                }
                await s.read(within: .seconds(600))
                try await sender.value
                let got = counter.value
                let seconds = PodBenchmark.ms(clock.now - start) / 1000
                #expect(got == total)
                lines.append("throughput_\(transport.rawValue) \(String(format: "%.1f", Double(got) / 1_048_576 / seconds))")
            }
            lines.append("throughput_cat_pipe \(String(format: "%.1f", try Self.catThroughput(bytes: total)))")
            // The runtime's own ceiling: runc copies the command's stdio through pipes of its own.
            lines.append("throughput_runc_exec \(String(format: "%.1f", try Self.catThroughput(bytes: total, through: Spawn.Options(path: "/usr/sbin/runc", arguments: ["--root", runcRoot, "exec", id, "cat"]))))")
            // An optimised client: the test binary is a debug build.
            if let crispctl = env["CRISPCTL_BIN"] {
                for transport in StreamTransportKind.allCases {
                    let command = Spawn.Options(path: crispctl, arguments: ["exec", "--socket", world.crispd.socket, "--transport",
                                                                            transport.rawValue, "-i", id, "--", "cat"])
                    lines.append("throughput_crispctl_\(transport.rawValue) \(String(format: "%.1f", try Self.catThroughput(bytes: total, through: command)))")
                }
            }

            // RSS with 50 sessions open (each `sleep 2`, started together).
            let rssIdle = PodBenchmark.rssKB(world.crispd.pid)
            var sessions: [StreamingTests.StreamReader] = []
            for i in 0..<50 {
                sessions.append(try await StreamingTests.exec(runtime, id, ["sleep", "8"], transport: i % 2 == 0 ? .spdy : .webSocket))
            }
            let rssBusy = PodBenchmark.rssKB(world.crispd.pid)
            for s in sessions { await s.read() }
            lines.append("rss_idle_kB \(rssIdle)")
            lines.append("rss_50_sessions_kB \(rssBusy)")
            collected.value = lines
        }
        let lines = collected.value
        try lines.joined(separator: "\n").appending("\n").write(toFile: out, atomically: true, encoding: .utf8)
    }

    /// MB/s of `bytes` written into `cat` through a pipe and read back: the limit for the
    /// streaming throughput.
    static func catThroughput(bytes total: Int, through command: Spawn.Options = Spawn.Options(path: "/bin/cat")) throws -> Double {
        let input = try Pipe2(), output = try Pipe2()
        var o = command
        // stderr is the test's: runc and crispctl would otherwise find fd 2 closed.
        o.descriptors = [0: input.read, 1: output.write, 2: 2]
        let start = ContinuousClock.now
        let child = try Spawn.start(o)
        input.closeRead()
        output.closeWrite()
        startThread(name: "bench-feed") {
            let block = [UInt8](repeating: 0x5a, count: 256 << 10)
            var sent = 0
            while sent < total {
                let n = block.withUnsafeBytes { write(input.write, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                sent += n
            }
            input.closeWrite()
        }
        var buffer = [UInt8](repeating: 0, count: 256 << 10)
        var got = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(output.read, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            got += n
        }
        output.closeRead()
        _ = child.waitBlocking()
        #expect(got == total, "\(command.path) \(command.arguments.joined(separator: " ")) passed \(got) of \(total) bytes")
        return Double(got) / 1_048_576 / (PodBenchmark.ms(ContinuousClock.now - start) / 1000)
    }
}
