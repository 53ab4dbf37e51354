import ArgumentParser
import CRIAPI
import Foundation
import GRPCNIOTransportHTTP2Posix
import SwiftProtobuf

/// rmi, checkpoint, stop, rm, stopp, rmp: one RPC each, for every id given.
extension Crispctl {
    struct Rmi: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove images (refused while a container uses one).")
        @OptionGroup var endpoint: Endpoint
        @Argument(help: "Image references or ids.") var images: [String]

        func run() async throws {
            for image in images {
                try await exitOnRPCError {
                    try await endpoint.images { im in
                        _ = try await im.removeImage(Runtime_V1_RemoveImageRequest.with { $0.image.image = image })
                    }
                }
                print("Deleted: \(image)")
            }
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Checkpoint a running container with CRIU into a tar archive; it keeps running.",
            discussion: "Needs enable_criu_support in crispd's configuration. Restore by creating a container whose image is the archive's path.")
        @OptionGroup var endpoint: Endpoint
        @Option(name: .customLong("export"), help: "Path of the archive to write (absolute).") var location: String
        @Option(help: "Seconds crispd may take.") var timeout: Int64 = 300
        @Argument(help: "Container id (or prefix).") var container: String

        func run() async throws {
            let location = URL(fileURLWithPath: self.location).path
            try await endpoint.each([container], done: { "Checkpointed \($0) to \(location)" }) { [timeout] rt, id in
                _ = try await rt.checkpointContainer(Runtime_V1_CheckpointContainerRequest.with {
                    $0.containerID = id
                    $0.location = location
                    $0.timeout = timeout
                })
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop containers (SIGTERM, then SIGKILL after the timeout).")
        @OptionGroup var endpoint: Endpoint
        @Option(name: .shortAndLong, help: "Seconds to wait before SIGKILL.") var timeout: Int64 = 10
        @Argument(help: "Container ids (or prefixes).") var containers: [String]

        func run() async throws {
            try await endpoint.each(containers, done: { $0 }) { [timeout] rt, id in
                _ = try await rt.stopContainer(Runtime_V1_StopContainerRequest.with { $0.containerID = id; $0.timeout = timeout })
            }
        }
    }

    struct Rm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove containers (a running one is stopped first).")
        @OptionGroup var endpoint: Endpoint
        @Argument(help: "Container ids (or prefixes).") var containers: [String]

        func run() async throws {
            try await endpoint.each(containers, done: { $0 }) { rt, id in
                _ = try await rt.removeContainer(Runtime_V1_RemoveContainerRequest.with { $0.containerID = id })
            }
        }
    }

    struct Stopp: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop pods and their containers.")
        @OptionGroup var endpoint: Endpoint
        @Argument(help: "Pod ids (or prefixes).") var pods: [String]

        func run() async throws {
            try await endpoint.each(pods, done: { "Stopped pod \($0)" }) { rt, id in
                _ = try await rt.stopPodSandbox(Runtime_V1_StopPodSandboxRequest.with { $0.podSandboxID = id })
            }
        }
    }

    struct Rmp: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove pods and their containers.")
        @OptionGroup var endpoint: Endpoint
        @Argument(help: "Pod ids (or prefixes).") var pods: [String]

        func run() async throws {
            try await endpoint.each(pods, done: { "Removed pod \($0)" }) { rt, id in
                _ = try await rt.removePodSandbox(Runtime_V1_RemovePodSandboxRequest.with { $0.podSandboxID = id })
            }
        }
    }
}

extension Crispctl.Endpoint {
    /// One runtime RPC per id, in order; prints `done(id)` after each, and stops at the first
    /// failure with its exit status.
    func each(_ ids: [String], done: (String) -> String,
              _ call: @escaping @Sendable (Runtime_V1_RuntimeService.Client<HTTP2ClientTransport.Posix>, String) async throws -> Void) async throws {
        for id in ids {
            try await exitOnRPCError { try await runtime { try await call($0, id) } }
            print(done(id))
        }
    }
}
