import Foundation

/// Renders a configuration as TOML (`crispd config`), as JSON (Status verbose info) and the
/// reference page of the README, all from `ConfigSchema` so they cannot drift apart.
extension CrispConfiguration {
    /// A complete TOML document that `ConfigLoader` reads back to an equal configuration.
    public func toml(withComments: Bool = true) -> String {
        var out = ""
        for table in ConfigSchema.tables {
            if !out.isEmpty { out += "\n" }
            out += "[\(table)]\n"
            for key in ConfigSchema.keys where key.table == table {
                if withComments { out += "# \(key.doc)\n" }
                out += "\(key.name) = \(Self.toml(key.value(in: self)))\n"
            }
        }
        for (name, h) in runtime.runtimes.sorted(by: { $0.key < $1.key }) {
            out += "\n[\(ConfigSchema.handlersTable).\(Self.tomlKey(name))]\n"
            out += "runtime_path = \(Self.toml(.string(h.runtimePath)))\n"
            out += "runtime_root = \(Self.toml(.string(h.runtimeRoot)))\n"
            out += "runtime_type = \(Self.toml(.string(h.runtimeType)))\n"
        }
        return out
    }

    /// The configuration as a JSON object keyed by table path, then key name.
    public func json() -> String {
        var object: [String: RenderedJSON] = [:]
        for table in ConfigSchema.tables {
            var fields: [String: RenderedJSON] = [:]
            for key in ConfigSchema.keys where key.table == table {
                switch key.value(in: self) {
                case .string(let s): fields[key.name] = .string(s)
                case .int(let i): fields[key.name] = .int(i)
                case .bool(let b): fields[key.name] = .bool(b)
                case .strings(let a): fields[key.name] = .strings(a)
                }
            }
            object[table] = .object(fields)
        }
        var handlers: [String: RenderedJSON] = [:]
        for (name, h) in runtime.runtimes {
            handlers[name] = .object(["runtime_path": .string(h.runtimePath), "runtime_root": .string(h.runtimeRoot),
                                      "runtime_type": .string(h.runtimeType)])
        }
        object[ConfigSchema.handlersTable] = .object(handlers)
        // JSONEncoder, not JSONSerialization: the latter sorts keys through an ICU locale, and
        // loading ICU's data on the first Status call cost an idle crispd about 1.5 MB of RSS.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(object)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func toml(_ value: ConfigValue) -> String {
        switch value {
        case .string(let s): return quote(s)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .strings(let a): return "[" + a.map(quote).joined(separator: ", ") + "]"
        }
    }

    static func tomlKey(_ s: String) -> String {
        s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) && !s.isEmpty ? s : quote(s)
    }

    /// TOML basic string with the escapes the TOML spec requires.
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    out += String(format: "\\u%04X", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

extension ConfigSchema {
    /// The configuration reference in Markdown: every table, key, type, default, flag.
    public static func referenceMarkdown() -> String {
        let defaults = CrispConfiguration()
        var out = "| key | type | default | flag | reload | meaning |\n| --- | --- | --- | --- | --- | --- |\n"
        for key in keys {
            let def = CrispConfiguration.toml(key.value(in: defaults)).replacingOccurrences(of: "|", with: "\\|")
            out += "| `\(key.path)` | \(key.kind.typeName) | `\(def)` | `\(key.flag)` | \(key.reloadable ? "SIGHUP" : "restart") | \(key.doc) |\n"
        }
        for (name, doc) in handlerKeys {
            out += "| `\(handlersTable).NAME.\(name)` | string | see below | `--runtimes` | restart | \(doc) |\n"
        }
        return out
    }
}

/// The values `json()` renders.
enum RenderedJSON: Encodable {
    case string(String), int(Int), bool(Bool), strings([String]), object([String: RenderedJSON])

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .bool(let b): try c.encode(b)
        case .strings(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}
