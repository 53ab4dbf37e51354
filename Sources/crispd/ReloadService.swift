import CrispConfig
import CrispService
import Logging
import ServiceLifecycle
import UnixSignals

/// Re-reads the configuration files on SIGHUP and applies what can change without a restart:
/// log level, registries, pause image. Logs what changed and what was ignored.
struct ReloadService: Service, CustomStringConvertible {
    var description: String { "ReloadService" }

    let sources: ConfigSources
    let live: LiveConfiguration
    let level: KeyValueLogHandler.Level
    let images: ImageManager
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    func reload() {
        let new: CrispConfiguration
        do { new = try ConfigLoader.load(sources) } catch {
            logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
            return
        }
        let (applied, needRestart) = live.reload(from: new)
        if let l = Logger.Level(rawValue: live.current.logLevel) { level.current = l }
        do {
            // registries.conf is re-read on every SIGHUP: its contents may change while its path does not.
            try images.reloadRegistries(path: live.current.image.registriesConf)
        } catch {
            logger.error("registries configuration not reloaded; keeping the previous one", metadata: ["error": "\(error)"])
        }
        logger.info("configuration reloaded", metadata: [
            "changed": "\(applied.joined(separator: ","))",
            "ignored_until_restart": "\(needRestart.joined(separator: ","))",
        ])
    }
}
