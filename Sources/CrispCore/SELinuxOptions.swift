/// SELinuxOptions as the CRI gives them; empty fields take the defaults.
public struct SELinuxOptions: Sendable, Equatable, Codable {
    public var user = ""
    public var role = ""
    public var type = ""
    public var level = ""
    public init(user: String = "", role: String = "", type: String = "", level: String = "") {
        self.user = user
        self.role = role
        self.type = type
        self.level = level
    }
}
