/// A POSIX signal as crisp sends it to containers: a number, stored in records as that number.
/// The values are Linux's; crisp runs only there.
public struct Signal: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let hangup = Signal(rawValue: 1)
    public static let interrupt = Signal(rawValue: 2)
    public static let quit = Signal(rawValue: 3)
    public static let kill = Signal(rawValue: 9)
    public static let user1 = Signal(rawValue: 10)
    public static let user2 = Signal(rawValue: 12)
    public static let terminate = Signal(rawValue: 15)
    public static let stop = Signal(rawValue: 19)
    public static let windowChange = Signal(rawValue: 28)

    /// An image's `StopSignal` ("SIGTERM", "TERM", "term" or a number). Names crisp does not know
    /// fall back to SIGTERM, as the container would get with no stop signal at all.
    public init(named name: String) {
        let upper = name.uppercased()
        let bare = upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper
        if let number = Int32(bare), number > 0, number < 65 {
            self.init(rawValue: number)
            return
        }
        let table: [String: Signal] = ["TERM": .terminate, "KILL": .kill, "INT": .interrupt, "QUIT": .quit, "HUP": .hangup,
                                       "USR1": .user1, "USR2": .user2, "WINCH": .windowChange, "STOP": .stop]
        self = table[bare] ?? .terminate
    }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(Int32.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public var description: String { String(rawValue) }
}
