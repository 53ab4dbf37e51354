import ArgumentParser
import CRIAPI
import CrispConfig
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix

/// crispctl: a small CLI for people, speaking CRI to crispd.
@main
struct Crispctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crispctl",
        abstract: "Talk to a running crispd.",
        subcommands: [Version.self, Status.self, ConfigCheck.self, Ps.self, Pods.self, Images.self, Inspect.self, Logs.self, Stats.self, Run.self,
                      Pull.self, Rmi.self, Tag.self, Prune.self, Check.self, Checkpoint.self, Stop.self, Rm.self, Stopp.self, Rmp.self, Exec.self, Attach.self, PortForward.self])

    struct Endpoint: ParsableArguments {
        @Option(help: "Path of crispd's CRI socket.") var socket = "/run/crisp/crisp.sock"

        func runtime<R: Sendable>(_ body: @Sendable (Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
            try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket),
                                                               transportSecurity: .plaintext)) { client in
                try await body(Runtime_V1_RuntimeService.Client(wrapping: client))
            }
        }

        func crispImages<R: Sendable>(_ body: @Sendable (Crisp_V1_Images.Client<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
            try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket),
                                                               transportSecurity: .plaintext)) { client in
                try await body(Crisp_V1_Images.Client(wrapping: client))
            }
        }

        func images<R: Sendable>(_ body: @Sendable (Runtime_V1_ImageService.Client<HTTP2ClientTransport.Posix>) async throws -> R) async throws -> R {
            try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket),
                                                               transportSecurity: .plaintext)) { client in
                try await body(Runtime_V1_ImageService.Client(wrapping: client))
            }
        }
    }

    struct Version: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the runtime's name and versions.")
        @OptionGroup var endpoint: Endpoint
        func run() async throws {
            let v = try await endpoint.runtime { try await $0.version(Runtime_V1_VersionRequest()) }
            print("Version:  \(v.version)\nRuntimeName:  \(v.runtimeName)\nRuntimeVersion:  \(v.runtimeVersion)\nRuntimeApiVersion:  \(v.runtimeApiVersion)")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the runtime's conditions.")
        @OptionGroup var endpoint: Endpoint
        func run() async throws {
            let s = try await endpoint.runtime { try await $0.status(Runtime_V1_StatusRequest()) }
            for c in s.status.conditions {
                print("\(c.type)=\(c.status)" + (c.reason.isEmpty ? "" : " reason=\(c.reason) message=\"\(c.message)\""))
            }
        }
    }

    struct ConfigCheck: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "config-check",
                                                        abstract: "Validate crispd's configuration files without starting it.")
        @Option(help: "Main configuration file.") var config = ConfigSources.defaultMainFile
        @Option(help: "Drop-in directory.") var configDir = ConfigSources.defaultDropInDirectory
        func run() throws {
            do {
                _ = try ConfigLoader.load(ConfigSources(mainFile: config, dropInDirectory: configDir))
                print("configuration OK")
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(2)
            }
        }
    }
}
