import ArgumentParser
import CRIAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import SwiftProtobuf
import Synchronization

/// pull (with progress), tag and prune.
extension Crispctl {
    struct Pull: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pull an image, showing each layer's progress (registries.conf applies).",
            discussion: "On a terminal each layer has a bar with bytes, total and rate; otherwise one line per layer as it starts and ends.")
        @OptionGroup var endpoint: Endpoint
        @Flag(name: .shortAndLong, help: "Print only the image id.") var quiet = false
        @Argument(help: "Image reference.") var image: String

        func run() async throws {
            let started = Date()
            let display = PullDisplay(terminal: !quiet && isatty(1) == 1, quiet: quiet)
            let ref = try await exitOnRPCError {
                try await endpoint.crispImages { [image] client in
                    try await client.pullWithProgress(Crisp_V1_PullWithProgressRequest.with { $0.image = image }) { response in
                        var ref = ""
                        for try await p in response.messages {
                            display.show(p)
                            if !p.imageRef.isEmpty { ref = p.imageRef }
                        }
                        return ref
                    }
                }
            }
            if quiet {
                print(ref)
            } else {
                print("Image is up to date for \(ref) (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
            }
        }
    }

    struct Tag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give an image another name.")
        @OptionGroup var endpoint: Endpoint
        @Argument(help: "Image reference or id.") var source: String
        @Argument(help: "New name (a reference with a tag).") var target: String

        func run() async throws {
            let ref = try await exitOnRPCError {
                try await endpoint.crispImages { [source, target] in
                    try await $0.tag(Crisp_V1_TagRequest.with { $0.source = source; $0.target = target }).imageRef
                }
            }
            print("Tagged \(ref) as \(target)")
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every image no container uses (pinned images stay).")
        @OptionGroup var endpoint: Endpoint

        func run() async throws {
            let used = try await exitOnRPCError {
                try await endpoint.runtime { Set(try await $0.listContainers(Runtime_V1_ListContainersRequest()).containers.map(\.imageRef)) }
            }
            let images = try await exitOnRPCError {
                try await endpoint.images { try await $0.listImages(Runtime_V1_ListImagesRequest()).images }
            }
            for image in images where !used.contains(image.id) && !image.pinned {
                try await exitOnRPCError {
                    try await endpoint.images { im in
                        _ = try await im.removeImage(Runtime_V1_RemoveImageRequest.with { $0.image.image = image.id })
                    }
                }
                print("Deleted: \(image.repoTags.first ?? image.id)")
            }
        }
    }
}

extension Crispctl {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the image and container store: every image whole and matching its digests, every layer with its directory.",
            discussion: "Exits 0 when nothing is damaged (notices are only reported), 1 when something is.")
        @OptionGroup var endpoint: Endpoint
        @Option(name: .shortAndLong, help: "table, json or yaml.") var output: OutputOptions.Format = .table

        func run() async throws {
            let report = try await exitOnRPCError {
                try await endpoint.crispImages { try await $0.checkStore(Crisp_V1_CheckStoreRequest()) }
            }
            if output != .table {
                try StructuredOutput.print([report], as: output)
            } else {
                print("checked \(report.images) images, \(report.layers) layers, \(report.containers) containers")
                for f in report.findings { print("\(f.severity): \(f.subject): \(f.problem)") }
            }
            if report.findings.contains(where: { $0.severity == "error" }) { throw ExitCode(1) }
        }
    }
}

/// Draws pull progress: on a terminal, one line per layer redrawn in place (bar, bytes, total,
/// rate); otherwise a line when a layer starts and when it is done, so logs stay readable.
final class PullDisplay: Sendable {
    private struct State {
        var drawn = 0
        var lastDraw = Date.distantPast
        var lastStates: [Crisp_V1_LayerState] = []
        var started: [String: Date] = [:]
        var announced: [String: Crisp_V1_LayerState] = [:]
    }
    let terminal: Bool
    let quiet: Bool
    private let state = Mutex(State())

    init(terminal: Bool, quiet: Bool) {
        self.terminal = terminal
        self.quiet = quiet
    }

    static func short(_ digest: String) -> String {
        String(digest.split(separator: ":").last?.prefix(12) ?? "")
    }

    static func bytes(_ n: Int64) -> String { ByteCountFormatter.string(fromByteCount: n, countStyle: .binary) }

    func show(_ p: Crisp_V1_PullProgress) {
        guard !quiet else { return }
        let now = Date()
        state.withLock { s in
            var lines: [String] = []
            for l in p.layers {
                if l.state == .layerDownloading && s.started[l.digest] == nil { s.started[l.digest] = now }
                let seconds = s.started[l.digest].map { now.timeIntervalSince($0) } ?? 0
                let rate = seconds > 0.2 ? Self.bytes(Int64(Double(l.received) / seconds)) + "/s" : ""
                if terminal {
                    let width = 30
                    let filled = l.size > 0 ? Int(Double(width) * min(1, Double(l.received) / Double(l.size))) : 0
                    let bar = "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "]"
                    let what = switch l.state {
                    case .layerExists: "already present"
                    case .layerDone: "done"
                    case .layerDownloading: "\(Self.bytes(l.received)) / \(Self.bytes(l.size))  \(rate)"
                    default: "waiting"
                    }
                    lines.append("\(Self.short(l.digest))  \(l.state == .layerExists ? String(repeating: " ", count: width + 2) : bar)  \(what)")
                } else if s.announced[l.digest] != l.state, l.state != .layerWaiting {
                    s.announced[l.digest] = l.state
                    switch l.state {
                    case .layerExists: print("\(Self.short(l.digest))  already present")
                    case .layerDownloading: print("\(Self.short(l.digest))  downloading \(Self.bytes(l.size))")
                    case .layerDone: print("\(Self.short(l.digest))  done \(Self.bytes(l.size))" + (rate.isEmpty ? "" : " (\(rate))"))
                    default: break
                    }
                }
            }
            guard terminal else { return }
            // About ten frames a second: crispd sends a state per chunk received, and a terminal
            // need not redraw that often; a layer changing state, and the last state, always show.
            let states = p.layers.map(\.state)
            if states == s.lastStates && p.imageRef.isEmpty && now.timeIntervalSince(s.lastDraw) < 0.1 { return }
            s.lastStates = states
            s.lastDraw = now
            // Back to the first line drawn last time, then every line cleared and drawn again.
            var out = s.drawn > 0 ? "\u{1B}[\(s.drawn)A" : ""
            for line in lines { out += "\u{1B}[2K\r" + line + "\n" }
            s.drawn = lines.count
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}
