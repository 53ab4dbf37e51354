import CrispCore
import Foundation
import TOMLKit

/// Where the configuration comes from, in the order it is applied over the built-in defaults.
public struct ConfigSources: Sendable {
    /// The main file; a missing file is only an error when `mainFileRequired`.
    public var mainFile: String
    public var mainFileRequired: Bool
    /// Drop-in directory: every `*.conf` applied in lexical order, later files win per key.
    public var dropInDirectory: String
    /// Command-line overrides as (dotted key path, raw text), applied last.
    public var overrides: [(key: String, value: String)]

    public static let defaultMainFile = "/etc/crisp/crisp.conf"
    public static let defaultDropInDirectory = "/etc/crisp/crisp.conf.d"

    public init(mainFile: String = ConfigSources.defaultMainFile, mainFileRequired: Bool = false,
                dropInDirectory: String = ConfigSources.defaultDropInDirectory,
                overrides: [(key: String, value: String)] = []) {
        self.mainFile = mainFile
        self.mainFileRequired = mainFileRequired
        self.dropInDirectory = dropInDirectory
        self.overrides = overrides
    }

    /// The files that will be read, in order.
    public func files() throws(ConfigError) -> [String] {
        var out: [String] = []
        if FileManager.default.fileExists(atPath: mainFile) {
            out.append(mainFile)
        } else if mainFileRequired {
            throw ConfigError([ConfigProblem(source: mainFile, message: "configuration file not found")])
        }
        if let names = try? FileManager.default.contentsOfDirectory(atPath: dropInDirectory) {
            out += names.filter { $0.hasSuffix(".conf") }.sorted().map { dropInDirectory + "/" + $0 }
        }
        return out
    }
}

public enum ConfigLoader {
    /// Reads every source, applies them in order and validates the result. Throws every
    /// problem found (syntax, unknown keys, wrong types, invalid values) at once.
    public static func load(_ sources: ConfigSources) throws(ConfigError) -> CrispConfiguration {
        var config = CrispConfiguration()
        var problems: [ConfigProblem] = []
        for file in try sources.files() {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                problems.append(ConfigProblem(source: file, message: "cannot read: \(error.localizedDescription)"))
                continue
            }
            problems += apply(toml: text, source: file, to: &config)
        }
        problems += apply(overrides: sources.overrides, to: &config)
        problems += validate(config)
        if !problems.isEmpty { throw ConfigError(problems) }
        return config
    }

    /// Applies one TOML document over `config`; returns what was wrong with it.
    public static func apply(toml text: String, source: String, to config: inout CrispConfiguration) -> [ConfigProblem] {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch let error as TOMLParseError {
            return [ConfigProblem(source: source, line: error.source.begin.line, message: "syntax error: \(error.description)")]
        } catch {
            return [ConfigProblem(source: source, message: "syntax error: \(error)")]
        }
        let lines = LineFinder(text: text)
        var problems: [ConfigProblem] = []
        for (name, value) in table {
            guard name == "crisp" else {
                let line = value.table == nil ? lines.line(ofTable: "", key: name) : lines.line(ofTable: name, key: nil)
                problems.append(ConfigProblem(source: source, line: line, key: name,
                                              message: "unknown table or key (everything lives under [crisp])"))
                continue
            }
            guard let crisp = value.table else {
                problems.append(ConfigProblem(source: source, line: lines.line(ofTable: "", key: name), key: name,
                                              message: "wrong type: want a table"))
                continue
            }
            walk(crisp, path: "crisp", source: source, lines: lines, config: &config, problems: &problems)
        }
        return problems
    }

    private static func walk(_ table: TOMLTable, path: String, source: String, lines: LineFinder,
                             config: inout CrispConfiguration, problems: inout [ConfigProblem]) {
        for (name, value) in table {
            let childPath = "\(path).\(name)"
            if childPath == ConfigSchema.handlersTable {
                guard let handlers = value.table else {
                    problems.append(ConfigProblem(source: source, line: lines.line(ofTable: path, key: name),
                                                  key: childPath, message: "wrong type: want a table of runtime handlers"))
                    continue
                }
                applyHandlers(handlers, source: source, lines: lines, config: &config, problems: &problems)
            } else if ConfigSchema.tables.contains(childPath) {
                guard let sub = value.table else {
                    problems.append(ConfigProblem(source: source, line: lines.line(ofTable: path, key: name),
                                                  key: childPath, message: "wrong type: want a table"))
                    continue
                }
                walk(sub, path: childPath, source: source, lines: lines, config: &config, problems: &problems)
            } else if let key = ConfigSchema.key(path: childPath) {
                let line = lines.line(ofTable: path, key: name)
                guard let v = ConfigValue(toml: value) else {
                    problems.append(ConfigProblem(source: source, line: line, key: childPath,
                                                  message: "wrong type: want \(key.kind.typeName), got \(value.type)"))
                    continue
                }
                if let problem = key.check(v) {
                    problems.append(ConfigProblem(source: source, line: line, key: childPath, message: problem))
                } else {
                    key.assign(v, to: &config)
                }
            } else {
                problems.append(ConfigProblem(source: source, line: lines.line(ofTable: path, key: name),
                                              key: childPath, message: "unknown key"))
            }
        }
    }

    private static func applyHandlers(_ table: TOMLTable, source: String, lines: LineFinder,
                                      config: inout CrispConfiguration, problems: inout [ConfigProblem]) {
        for (handlerName, value) in table {
            let tablePath = "\(ConfigSchema.handlersTable).\(handlerName)"
            guard let fields = value.table else {
                problems.append(ConfigProblem(source: source, line: lines.line(ofTable: ConfigSchema.handlersTable, key: handlerName),
                                              key: tablePath, message: "wrong type: want a table"))
                continue
            }
            var handler = config.runtime.runtimes[handlerName] ?? .init()
            for (field, v) in fields {
                let line = lines.line(ofTable: tablePath, key: field)
                guard let s = v.string else {
                    let known = ConfigSchema.handlerKeys.contains { $0.name == field }
                    problems.append(ConfigProblem(source: source, line: line, key: "\(tablePath).\(field)",
                                                  message: known ? "wrong type: want string, got \(v.type)" : "unknown key"))
                    continue
                }
                switch field {
                case "runtime_path": handler.runtimePath = s
                case "runtime_root": handler.runtimeRoot = s
                case "runtime_type": handler.runtimeType = s
                default:
                    problems.append(ConfigProblem(source: source, line: line, key: "\(tablePath).\(field)", message: "unknown key"))
                }
            }
            config.runtime.runtimes[handlerName] = handler
        }
    }

    /// Applies command-line overrides given as text; arrays are comma-separated.
    public static func apply(overrides: [(key: String, value: String)], to config: inout CrispConfiguration) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        for (path, raw) in overrides {
            if path == ConfigSchema.handlersTable {
                // NAME:PATH[:ROOT[:TYPE]]
                let parts = raw.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 2, parts.count <= 4, !parts[0].isEmpty else {
                    problems.append(ConfigProblem(source: "command line", key: path,
                                                  message: "invalid value \"\(raw)\": want NAME:PATH[:ROOT[:TYPE]]"))
                    continue
                }
                config.runtime.runtimes[parts[0]] = .init(runtimePath: parts[1],
                                                          runtimeRoot: parts.count > 2 ? parts[2] : "",
                                                          runtimeType: parts.count > 3 ? parts[3] : "oci")
                continue
            }
            guard let key = ConfigSchema.key(path: path) else {
                problems.append(ConfigProblem(source: "command line", key: path, message: "unknown key"))
                continue
            }
            let value: ConfigValue
            switch key.kind {
            case .string, .choice: value = .string(raw)
            case .strings: value = .strings(raw.isEmpty ? [] : raw.split(separator: ",").map { String($0) })
            case .bool:
                guard let b = Bool(raw) else {
                    problems.append(ConfigProblem(source: "command line", key: path, message: "invalid value \"\(raw)\": want true or false"))
                    continue
                }
                value = .bool(b)
            case .int:
                guard let i = Int(raw) else {
                    problems.append(ConfigProblem(source: "command line", key: path, message: "invalid value \"\(raw)\": want an integer"))
                    continue
                }
                value = .int(i)
            }
            if let problem = key.check(value) {
                problems.append(ConfigProblem(source: "command line", key: "\(key.flag)", message: problem))
            } else {
                key.assign(value, to: &config)
            }
        }
        return problems
    }
}

extension ConfigValue {
    init?(toml value: any TOMLValueConvertible) {
        switch value.type {
        case .string: self = .string(value.string ?? "")
        case .int: self = .int(value.int ?? 0)
        case .bool: self = .bool(value.bool ?? false)
        case .array:
            guard let array = value.array else { return nil }
            var out: [String] = []
            for element in array {
                guard let s = element.string else { return nil }
                out.append(s)
            }
            self = .strings(out)
        default: return nil
        }
    }
}

/// toml++ does not give source positions for values through TOMLKit, so the line of a key is
/// found by scanning the text: the first `name =` (or `[table]` header) inside its table.
struct LineFinder {
    let lines: [Substring]
    init(text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false) }

    func line(ofTable table: String, key: String?) -> Int? {
        var current = ""
        for (i, raw) in lines.enumerated() {
            let l = raw.trimmingCharacters(in: .whitespaces)
            if l.hasPrefix("[") {
                let header = l.trimmingCharacters(in: CharacterSet(charactersIn: "[] \t"))
                current = header.split(separator: "#").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? header
                if key == nil, current == table || current.hasPrefix(table + ".") { return i + 1 }
                if let key, current == "\(table).\(key)" || current.hasPrefix("\(table).\(key).") { return i + 1 }
                continue
            }
            guard let key, current == table else { continue }
            if l.hasPrefix(key), l.dropFirst(key.count).trimmingCharacters(in: .whitespaces).hasPrefix("=") { return i + 1 }
        }
        return nil
    }
}
