public import CrispConfig
import Synchronization

/// The configuration in force, shared by every service. Replaced whole on SIGHUP; readers take a
/// copy, so one request sees one consistent configuration.
public final class LiveConfiguration: Sendable {
    private let value: Mutex<CrispConfiguration>

    public init(_ config: CrispConfiguration) { value = Mutex(config) }

    public var current: CrispConfiguration { value.withLock { $0 } }

    /// Applies the reloadable keys of `new` and returns the dotted paths that changed, and the
    /// paths that changed but need a restart.
    @discardableResult
    public func reload(from new: CrispConfiguration) -> (applied: [String], needRestart: [String]) {
        value.withLock { current in
            var applied: [String] = []
            var needRestart: [String] = []
            for key in ConfigSchema.keys where key.value(in: current) != key.value(in: new) {
                if key.reloadable {
                    key.copy(from: new, to: &current)
                    applied.append(key.path)
                } else {
                    needRestart.append(key.path)
                }
            }
            if current.runtime.runtimes != new.runtime.runtimes { needRestart.append(ConfigSchema.handlersTable) }
            return (applied, needRestart)
        }
    }
}
