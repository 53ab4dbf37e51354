/// One thing wrong with the configuration, with where it came from.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// The file, or `command line`, or nil for a problem of the merged result.
    public var source: String?
    public var line: Int?
    /// Dotted key such as `crisp.api.listen`, when the problem is about one key.
    public var key: String?
    public var message: String

    public init(source: String? = nil, line: Int? = nil, key: String? = nil, message: String) {
        self.source = source
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var s = ""
        if let source { s += source }
        if let line { s += s.isEmpty ? "line \(line)" : ":\(line)" }
        if !s.isEmpty { s += ": " }
        if let key { s += "\(key): " }
        return s + message
    }
}

/// Start-up stops with every problem found, not just the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]
    public init(_ problems: [ConfigProblem]) { self.problems = problems }
    public var description: String {
        "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
