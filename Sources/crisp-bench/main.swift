// Benchmarks for `make bench`.
//
//   crisp-bench generate-layer PATH
//       writes the storage benchmark layer: 10,000 small files in 100 directories plus four
//       40 MiB files (~200 MB uncompressed tar).
//   crisp-bench storage --dir DIR --driver overlay|vfs --tar PATH [--sync none|filesystem]
//       opens a fresh storage root in DIR, applies the tar as a layer (streamed in 1 MiB chunks,
//       as a pull would feed it), and prints "seconds=<apply time> peak_rss_kb=<VmHWM>".
import CrispCore
import CrispOS
import CrispStorage
import CrispTestSupport
import Glibc
import Logging

@main
struct Bench {
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        do {
            switch args.first {
            case "generate-layer" where args.count == 2:
                try generate(to: args[1])
            case "storage":
                var opts: [String: String] = [:]
                var i = 1
                while i + 1 < args.count { opts[args[i]] = args[i + 1]; i += 2 }
                guard let dir = opts["--dir"], let tar = opts["--tar"] else { usage() }
                try await storage(dir: dir, driver: opts["--driver"] ?? "overlay", tar: tar,
                                  sync: StorageOptions.SyncMode(rawValue: opts["--sync"] ?? "none") ?? .none)
            default:
                usage()
            }
        } catch {
            say(2, "crisp-bench: \(error)")
            exit(1)
        }
    }

    static func usage() -> Never {
        say(2, "usage: crisp-bench generate-layer PATH | crisp-bench storage --dir DIR --driver overlay|vfs --tar PATH [--sync none|filesystem]")
        exit(2)
    }

    static func generate(to path: String) throws {
        var entries: [TarEntry] = []
        var g = SystemRandomNumberGenerator()
        for d in 0..<100 {
            entries.append(.dir("usr/share/d\(d)"))
            for f in 0..<100 {
                let size = Int(g.next() % 6000) + 200
                entries.append(TarEntry("usr/share/d\(d)/file\(f).txt", .file(.pattern(size: size, seed: UInt8(f & 0xff)))))
            }
        }
        for i in 0..<4 {
            entries.append(TarEntry("opt/big/blob\(i).bin", .file(.pattern(size: 40 << 20, seed: UInt8(i)))))
        }
        try TarBuilder.write(entries, to: path)
    }

    static func storage(dir: String, driver: String, tar: String, sync: StorageOptions.SyncMode) async throws {
        let digest = try sha256(file: tar)
        let storage = try await Storage.open(StorageOptions(root: dir + "/root", runRoot: dir + "/run", driver: driver, sync: sync),
                                             logger: Logger(label: "bench"))
        let start = ContinuousClock.now
        _ = try await storage.applyLayer(CreateLayerOptions(id: LayerID.chainID(parent: nil, diffDigest: digest), parent: nil,
                                                            expectedDiffDigest: digest),
                                         chunks: FileChunks(path: tar))
        let elapsed = ContinuousClock.now - start
        await storage.close()
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        say(1, "seconds=\(seconds) peak_rss_kb=\(peakRSSKiB())")
    }

    /// The layer's diff digest, computed up front the way a manifest would announce it.
    static func sha256(file: String) throws -> Digest {
        let p = try runCapture(["/usr/bin/sha256sum", file])
        return try Digest(parsing: "sha256:" + String(p.prefix(64)))
    }

    static func peakRSSKiB() -> Int {
        for line in (readSmallFile("/proc/self/status") ?? "").split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    static func say(_ fd: Int32, _ s: String) {
        let b = Array((s + "\n").utf8)
        _ = b.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

/// A file read in 1 MiB chunks as an async sequence (what a download + decompressor hands over).
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = [UInt8]
    let path: String

    final class AsyncIterator: AsyncIteratorProtocol {
        let fd: Int32
        init(path: String) { fd = open(path, O_RDONLY | O_CLOEXEC) }
        deinit { if fd >= 0 { close(fd) } }
        func next() async throws -> [UInt8]? {
            guard fd >= 0 else { throw SystemCallError("open", "bench tar", errno: ENOENT) }
            var failure: Int32 = 0
            let chunk = [UInt8](unsafeUninitializedCapacity: 1 << 20) { buf, count in
                let n = read(fd, buf.baseAddress, buf.count)
                if n < 0 { failure = errno; count = 0 } else { count = n }
            }
            if failure != 0 { throw SystemCallError("read", "bench tar", errno: failure) }
            return chunk.isEmpty ? nil : chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(path: path) }
}

/// Runs a command (posix_spawn) and returns its standard output.
func runCapture(_ argv: [String]) throws -> String {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw SystemCallError("pipe", argv[0], errno: errno) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var pid: pid_t = 0
    let cargs = argv.map { strdup($0) } + [nil]
    defer { cargs.forEach { free($0) } }
    let r = posix_spawn(&pid, argv[0], &actions, nil, cargs, environ)
    close(fds[1])
    guard r == 0 else { close(fds[0]); throw SystemCallError("posix_spawn", argv[0], errno: r) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    close(fds[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return String(decoding: out, as: UTF8.self)
}
