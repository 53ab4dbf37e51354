/// One thing `Storage.check` found.
public struct StoreFinding: Sendable, Equatable {
    public enum Severity: String, Sendable {
        /// The store is damaged here: an image that cannot be used, a record without its data.
        case error
        /// Not damage: work in progress, or what the next start-up clean-up removes.
        case notice
    }

    public var severity: Severity
    /// What it is about: `image sha256:…`, `layer …`, `container …`.
    public var subject: String
    public var problem: String

    public init(severity: Severity, subject: String, problem: String) {
        self.severity = severity
        self.subject = subject
        self.problem = problem
    }
}

public struct StoreCheckReport: Sendable, Equatable {
    public var images = 0
    public var layers = 0
    public var containers = 0
    public var findings: [StoreFinding] = []
    public var errors: Int { findings.filter { $0.severity == .error }.count }

    public init() {}
}
