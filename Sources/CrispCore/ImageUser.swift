/// The user an image runs as, from its config's `User` (`uid`, `uid:gid`, `name`, `name:group`).
public enum ImageUser: Sendable, Equatable {
    case none
    case uid(Int64)
    case name(String)
}
