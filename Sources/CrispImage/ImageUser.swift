public import CrispCore
import CrispOCI
import Foundation

extension ImageUser {
    /// Reads `config.User` from image config bytes; `.none` when absent, empty or unreadable.
    public init(configBytes: [UInt8]) {
        guard let c = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(configBytes)),
              let user = c.config?.user, !user.isEmpty else {
            self = .none
            return
        }
        let first = String(user.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
        if let uid = Int64(first) { self = .uid(uid) } else { self = .name(first) }
    }
}
