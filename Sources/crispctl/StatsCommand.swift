import ArgumentParser
import CRIAPI
import Foundation
import SwiftProtobuf
import Glibc

/// stats: containers' CPU, memory and writable-layer use, refreshed like top (or once).
extension Crispctl {
    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show running containers' resource use, refreshing.")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var format: OutputOptions
        @Flag(name: .long, help: "Print one sample and exit.") var noStream = false
        @Option(help: "Seconds between refreshes.") var interval: Double = 2
        @Argument(help: "Container ids (or prefixes); all running ones when none.") var containers: [String] = []

        func run() async throws {
            let tty = isatty(1) == 1
            while true {
                let all = try await exitOnRPCError {
                    try await endpoint.runtime { rt in
                        try await rt.listContainerStats(Runtime_V1_ListContainerStatsRequest()).stats
                    }
                }
                let wanted = all.filter { s in containers.isEmpty || containers.contains { s.attributes.id.hasPrefix($0) } }
                    .sorted { $0.attributes.metadata.name < $1.attributes.metadata.name }
                if format.quiet {
                    wanted.forEach { print($0.attributes.id) }
                } else if format.output != .table {
                    try StructuredOutput.print(wanted, as: format.output)
                } else {
                    if tty && !noStream { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                    Table.print(header: ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"], rows: wanted.map(Self.row))
                }
                // CPU rates need two samples; the first refresh of a one-shot shows what crispd has.
                if noStream { return }
                try await Task.sleep(for: .milliseconds(Int(max(interval, 0.5) * 1000)))
            }
        }

        static func row(_ s: Runtime_V1_ContainerStats) -> [String] {
            let cpu = s.cpu.hasUsageNanoCores ? String(format: "%.2f", Double(s.cpu.usageNanoCores.value) / 1e7) : "-"
            let mem = s.memory.hasWorkingSetBytes
                ? ByteCountFormatter.string(fromByteCount: Int64(s.memory.workingSetBytes.value), countStyle: .binary) : "-"
            let disk = s.writableLayer.hasUsedBytes
                ? ByteCountFormatter.string(fromByteCount: Int64(s.writableLayer.usedBytes.value), countStyle: .binary) : "-"
            let inodes = s.writableLayer.hasInodesUsed ? "\(s.writableLayer.inodesUsed.value)" : "-"
            return [Table.short(s.attributes.id), s.attributes.metadata.name, cpu, mem, disk, inodes]
        }
    }
}
