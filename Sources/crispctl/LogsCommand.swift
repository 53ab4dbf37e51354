import ArgumentParser
import CRIAPI
import CrispCore
import CrispOS
import Foundation
import SwiftProtobuf
import Glibc

/// logs: a container's output from its CRI log file (`TIMESTAMP STREAM P|F TEXT` lines), with
/// --tail and -f, which follows the file with inotify (and a rotated file to its new one).
extension Crispctl {
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a container's logs.")
        @OptionGroup var endpoint: Endpoint
        @Flag(name: .shortAndLong, help: "Keep printing what the container writes (until interrupted).") var follow = false
        @Option(help: "Only the last N lines.") var tail: Int?
        @Option(help: "Only lines written since a time (RFC 3339, e.g. 2026-11-30T12:00:00Z) or for a duration (e.g. 90s, 10m, 1h30m).")
        var since: String?
        @Flag(name: .long, help: "Prefix each line with its timestamp.") var timestamps = false
        @Argument(help: "Container id (or unique prefix).") var container: String

        func run() async throws {
            let id = container
            let path = try await exitOnRPCError {
                try await endpoint.runtime { rt in
                    try await rt.containerStatus(Runtime_V1_ContainerStatusRequest.with { $0.containerID = id }).status.logPath
                }
            }
            guard let handle = FileHandle(forReadingAtPath: path) else {
                FileHandle.standardError.write(Data("crispctl: cannot read the log file \(path)\n".utf8))
                throw ExitCode(1)
            }
            var carry = [UInt8]()
            let first = Array(handle.readDataToEndOfFile())
            var lines = Self.completeLines(first, carry: &carry)
            if let since {
                guard let start = Self.startTime(since) else {
                    FileHandle.standardError.write(Data("crispctl: --since \(since) is neither an RFC 3339 time nor a duration such as 10m\n".utf8))
                    throw ExitCode(4)
                }
                lines = lines.filter { line in
                    Self.timestamp(of: line).map { $0 >= start } ?? true
                }
            }
            if let tail { lines = Array(lines.suffix(max(tail, 0))) }
            emit(lines)
            guard follow else { return }
            let timestamps = timestamps
            let pending = carry
            try await runOnThread(name: "crispctl-logs") { () throws(CrispError) in
                var carry = pending
                var current = handle
                let watcher = try InotifyWatcher()
                var watch = try watcher.add(path, mask: [.modify, .moveSelf, .deleteSelf])
                while true {
                    guard case .events(let events) = watcher.next() else { return }
                    let more = Array(current.readDataToEndOfFile())
                    Self.print(Self.completeLines(more, carry: &carry), timestamps: timestamps)
                    if events.contains(where: { !$0.mask.isDisjoint(with: [.moveSelf, .deleteSelf]) }) {
                        // Rotated (ReopenContainerLog): conmon writes to a new file at the same path.
                        watcher.remove(watch)
                        guard let reopened = FileHandle(forReadingAtPath: path) else { return }
                        current = reopened
                        watch = try watcher.add(path, mask: [.modify, .moveSelf, .deleteSelf])
                        Self.print(Self.completeLines(Array(current.readDataToEndOfFile()), carry: &carry), timestamps: timestamps)
                    }
                }
            }
        }

        func emit(_ lines: [[UInt8]]) { Self.print(lines, timestamps: timestamps) }

        /// `--since`: an RFC 3339 time, or a duration before now in Go's notation (h, m, s, ms).
        static func startTime(_ text: String, now: Date = Date()) -> Date? {
            if let date = time(text) { return date }
            var seconds = 0.0, number = "", unit = "", rest = Substring(text)
            guard !rest.isEmpty else { return nil }
            while let c = rest.first {
                if c.isNumber || c == "." {
                    if !unit.isEmpty {
                        guard let factor = ["h": 3600.0, "m": 60, "s": 1, "ms": 0.001][unit], let n = Double(number) else { return nil }
                        seconds += n * factor
                        number = ""
                        unit = ""
                    }
                    number.append(c)
                } else {
                    unit.append(c)
                }
                rest = rest.dropFirst()
            }
            guard let factor = ["h": 3600.0, "m": 60, "s": 1, "ms": 0.001][unit], let n = Double(number) else { return nil }
            return now.addingTimeInterval(-(seconds + n * factor))
        }

        /// The time at the start of a CRI log line (RFC 3339 with nanoseconds and a zone).
        static func timestamp(of line: [UInt8]) -> Date? {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")) else { return nil }
            return time(String(decoding: line[..<space], as: UTF8.self))
        }

        static func time(_ text: String) -> Date? {
            // ISO8601DateFormatter takes no nanoseconds: the fraction is parsed apart.
            var whole = text, fraction = 0.0
            if let dot = text.firstIndex(of: "."), let zone = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
                fraction = Double("0" + text[dot..<zone]) ?? 0
                whole = String(text[..<dot] + text[zone...])
            }
            return ISO8601DateFormatter().date(from: whole)?.addingTimeInterval(fraction)
        }

        /// Splits at newlines; a trailing partial line waits in `carry` for the rest.
        static func completeLines(_ bytes: [UInt8], carry: inout [UInt8]) -> [[UInt8]] {
            let all = carry + bytes
            var lines = all.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
            carry = lines.removeLast()
            return lines
        }

        /// `TIMESTAMP STREAM TAG TEXT`: TEXT, with the newline the runtime took off unless the
        /// tag is P (a partial line continued by the next record).
        static func print(_ lines: [[UInt8]], timestamps: Bool) {
            var out = [UInt8]()
            for line in lines {
                let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 3, omittingEmptySubsequences: false)
                guard fields.count >= 3 else { continue }
                if timestamps { out += fields[0] + [UInt8(ascii: " ")] }
                if fields.count == 4 { out += fields[3] }
                if fields[2].first != UInt8(ascii: "P") { out.append(UInt8(ascii: "\n")) }
            }
            FileHandle.standardOutput.write(Data(out))
        }
    }
}
