import ArgumentParser
import CrispConfig
import CrispCore
import CrispNetwork
import CrispOS
import Foundation

/// The process entry. The command runs on the cooperative pool while the main thread waits: an
/// async `main` would end the main thread through dispatch_main's pthread_exit, and unwinding it
/// pages in about 1 MB of unwind tables that a long-running daemon then keeps resident. Nothing
/// in crispd runs on the main queue or the main actor.
@main
enum CrispdMain {
    static func main() {
        MallocArenas.limit(to: 2)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                var command = try Crispd.parseAsRoot()
                if var async = command as? any AsyncParsableCommand {
                    try await async.run()
                } else {
                    try command.run()
                }
            } catch {
                Crispd.exit(withError: error)
            }
            done.signal()
        }
        done.wait()
        exit(0)
    }
}

struct Crispd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crispd",
        abstract: "crisp: a Kubernetes container runtime (CRI v1 over gRPC on a unix socket).",
        discussion: """
            Configuration is read from /etc/crisp/crisp.conf, then every *.conf in /etc/crisp/crisp.conf.d \
            in lexical order, then these flags; each flag is named after its TOML key.
            """,
        version: CrispVersion.string,
        subcommands: [ConfigCommand.self, InstallCNIConfigCommand.self])

    @OptionGroup var flags: ConfigFlags

    func run() async throws {
        let config: CrispConfiguration
        do { config = try ConfigLoader.load(flags.sources) } catch {
            FileHandleStderr.write("crispd: \(error)\n")
            throw ExitCode(2)
        }
        do {
            try await Daemon(config: config, sources: flags.sources).run()
        } catch {
            FileHandleStderr.write("crispd: \(error)\n")
            throw ExitCode(1)
        }
    }
}

/// `crispd config`: the effective configuration as TOML, which crispd reads back unchanged.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the effective configuration as TOML (or the reference as Markdown).")

    @OptionGroup var flags: ConfigFlags
    @Flag(help: "Print the configuration reference (Markdown table) instead.") var reference = false
    @Flag(help: "Leave out the comment above each key.") var noComments = false

    func run() throws {
        if reference {
            print(ConfigSchema.referenceMarkdown(), terminator: "")
            return
        }
        do {
            print(try ConfigLoader.load(flags.sources).toml(withComments: !noComments), terminator: "")
        } catch {
            FileHandleStderr.write("crispd: \(error)\n")
            throw ExitCode(2)
        }
    }
}

/// `crispd install-cni-config`: writes crisp's default bridge network (10.85.0.0/16, portmap) into
/// `network_dir` when that directory holds no configuration; never overwrites one. `make run` calls it.
struct InstallCNIConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-cni-config",
        abstract: "Install the default CNI bridge configuration if network_dir has none.")

    @OptionGroup var flags: ConfigFlags

    func run() throws {
        let config: CrispConfiguration
        do { config = try ConfigLoader.load(flags.sources) } catch {
            FileHandleStderr.write("crispd: \(error)\n")
            throw ExitCode(2)
        }
        let dir = config.network.networkDir
        if try CNIDefaultConfig.installIfMissing(in: dir) {
            print("installed \(dir)/10-crisp-bridge.conflist")
        } else {
            print("\(dir) already has a CNI configuration; left as it is")
        }
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        FileHandle.standardError.write(Data(s.utf8))
    }
}
