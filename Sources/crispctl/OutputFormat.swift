import ArgumentParser
import Foundation
import Glibc
import GRPCCore
import SwiftProtobuf
import Yams

/// How list and inspect commands print: a table sized to the terminal, JSON or YAML for scripts,
/// or bare ids (`-q`).
struct OutputOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument { case table, json, yaml }
    @Option(name: .shortAndLong, help: "table, json or yaml.") var output: Format = .table
    @Flag(name: .shortAndLong, help: "Print ids only.") var quiet = false
}

enum Table {
    /// Columns padded to their widest cell; the last column is cut to the terminal's width
    /// when stdout is one.
    static func print(header: [String], rows: [[String]]) {
        let all = [header] + rows
        var widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
        if let columns = terminalColumns(), widths.count > 1 {
            let fixed = widths.dropLast().reduce(0) { $0 + $1 + 3 }
            widths[widths.count - 1] = max(8, min(widths[widths.count - 1], columns - fixed))
        }
        for row in all {
            let cells = row.enumerated().map { i, cell -> String in
                let c = cell.count > widths[i] ? String(cell.prefix(max(widths[i] - 1, 0))) + "…" : cell
                return i == row.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }
            Swift.print(cells.joined(separator: "   "))
        }
    }

    static func terminalColumns() -> Int? {
        guard isatty(1) == 1 else { return nil }
        var w = winsize()
        guard ioctl(1, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0 else { return nil }
        return Int(w.ws_col)
    }

    /// "3 minutes ago" from CRI nanoseconds.
    static func age(_ nanos: Int64) -> String {
        let seconds = Int(Date().timeIntervalSince1970) - Int(nanos / 1_000_000_000)
        switch seconds {
        case ..<60: return "\(max(seconds, 0)) seconds ago"
        case ..<3600: return "\(seconds / 60) minutes ago"
        case ..<86400: return "\(seconds / 3600) hours ago"
        default: return "\(seconds / 86400) days ago"
        }
    }

    static func short(_ id: String) -> String { String(id.prefix(13)) }
}

enum StructuredOutput {
    /// Protobuf's canonical JSON (lowerCamelCase names), pretty-printed, or the same tree as
    /// YAML. As in crictl's, fields at their zero value are left out (a ready pod has no
    /// `state`: SANDBOX_READY is 0).
    static func print<M: SwiftProtobuf.Message>(_ messages: [M], as format: OutputOptions.Format) throws {
        let items = try messages.map { try JSONSerialization.jsonObject(with: Data($0.jsonString().utf8)) }
        if format == .yaml {
            Swift.print(try Yams.serialize(node: try yamlNode(items), sortKeys: true), terminator: "")
            return
        }
        let data = try JSONSerialization.data(withJSONObject: items, options: [.prettyPrinted, .sortedKeys])
        Swift.print(String(decoding: data, as: UTF8.self))
    }

    /// A JSON value as a YAML node; strings that would read back as numbers or booleans are
    /// quoted by Yams's own representation of String.
    static func yamlNode(_ value: Any) throws -> Node {
        switch value {
        case let d as [String: Any]:
            return Node.mapping(Node.Mapping(try d.keys.sorted().map { (Node($0), try yamlNode(d[$0]!)) }))
        case let a as [Any]:
            return Node.sequence(Node.Sequence(try a.map(yamlNode)))
        case let s as String:
            return try s.represented()
        case let b as Bool:
            return try b.represented()
        case let i as Int:
            return try i.represented()
        case let d as Double:
            return try d.represented()
        case let n as NSNumber:
            return Node(n.stringValue)
        default:
            return Node("null", Tag(.null))
        }
    }
}

/// A failed RPC as people and scripts want it: the message and gRPC code on stderr, and an exit
/// status per code (NotFound 3, InvalidArgument 4, FailedPrecondition 5, Unavailable 6, other 1).
func exitOnRPCError<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let e as RPCError {
        let (name, status): (String, Int32) = switch e.code {
        case .notFound: ("NotFound", 3)
        case .invalidArgument: ("InvalidArgument", 4)
        case .failedPrecondition: ("FailedPrecondition", 5)
        case .unavailable: ("Unavailable", 6)
        default: ("\(e.code)", 1)
        }
        FileHandle.standardError.write(Data("crispctl: \(e.message) (\(name))\n".utf8))
        throw ExitCode(status)
    }
}
