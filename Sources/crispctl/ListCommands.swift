import ArgumentParser
import CRIAPI
import Foundation
import SwiftProtobuf

/// ps, pods, images, inspect: what runs on the node, as a table, JSON or ids.
extension Crispctl {
    struct Ps: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List containers (running ones unless -a).")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var format: OutputOptions
        @Flag(name: .shortAndLong, help: "Show exited and created containers too.") var all = false
        @Option(name: .long, help: "Only containers of this pod (id or prefix).") var pod: String?

        func run() async throws {
            var r = Runtime_V1_ListContainersRequest()
            if !all { r.filter.state.state = .containerRunning }
            if let pod { r.filter.podSandboxID = pod }
            let list = try await exitOnRPCError { try await endpoint.runtime { [r] in try await $0.listContainers(r).containers } }
                .sorted { $0.createdAt > $1.createdAt }
            if format.quiet { return list.forEach { print($0.id) } }
            if format.output != .table { return try StructuredOutput.print(list, as: format.output) }
            Table.print(header: ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID"],
                        rows: list.map { c in
                            [Table.short(c.id), c.image.image, Table.age(c.createdAt), Self.state(c.state), c.metadata.name,
                             "\(c.metadata.attempt)", Table.short(c.podSandboxID)]
                        })
        }

        static func state(_ s: Runtime_V1_ContainerState) -> String {
            switch s {
            case .containerCreated: "Created"
            case .containerRunning: "Running"
            case .containerExited: "Exited"
            default: "Unknown"
            }
        }
    }

    struct Pods: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List pods.")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var format: OutputOptions

        func run() async throws {
            let list = try await exitOnRPCError {
                try await endpoint.runtime { try await $0.listPodSandbox(Runtime_V1_ListPodSandboxRequest()).items }
            }.sorted { $0.createdAt > $1.createdAt }
            if format.quiet { return list.forEach { print($0.id) } }
            if format.output != .table { return try StructuredOutput.print(list, as: format.output) }
            Table.print(header: ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"],
                        rows: list.map { p in
                            [Table.short(p.id), Table.age(p.createdAt), p.state == .sandboxReady ? "Ready" : "NotReady",
                             p.metadata.name, p.metadata.namespace, "\(p.metadata.attempt)",
                             p.runtimeHandler.isEmpty ? "(default)" : p.runtimeHandler]
                        })
        }
    }

    struct Images: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List images.")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var format: OutputOptions

        func run() async throws {
            let list = try await exitOnRPCError {
                try await endpoint.images { try await $0.listImages(Runtime_V1_ListImagesRequest()).images }
            }
            if format.quiet { return list.forEach { print($0.id) } }
            if format.output != .table { return try StructuredOutput.print(list, as: format.output) }
            var rows: [[String]] = []
            for image in list {
                let id = String(image.id.split(separator: ":").last?.prefix(13) ?? "")
                let size = ByteCountFormatter.string(fromByteCount: Int64(image.size), countStyle: .binary)
                let tags = image.repoTags.isEmpty ? ["<none>:<none>"] : image.repoTags
                for tag in tags {
                    let cut = tag.lastIndex(of: ":").map { (String(tag[..<$0]), String(tag[tag.index(after: $0)...])) } ?? (tag, "")
                    rows.append([cut.0, cut.1, id, size])
                }
            }
            Table.print(header: ["IMAGE", "TAG", "IMAGE ID", "SIZE"], rows: rows)
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a container, pod or image in full (JSON or YAML), with crispd's verbose information.")
        @OptionGroup var endpoint: Endpoint
        @Option(name: .shortAndLong, help: "json or yaml.") var output: OutputOptions.Format = .json
        @Argument(help: "Container or pod id (or unique prefix), or an image reference or id.") var target: String

        func run() async throws {
            let t = target
            // A container first, then a pod, then an image: ids of the three never collide.
            if let c = try? await endpoint.runtime({ rt in
                try await rt.containerStatus(Runtime_V1_ContainerStatusRequest.with { $0.containerID = t; $0.verbose = true })
            }) { return try StructuredOutput.print([c], as: output) }
            if let p = try? await endpoint.runtime({ rt in
                try await rt.podSandboxStatus(Runtime_V1_PodSandboxStatusRequest.with { $0.podSandboxID = t; $0.verbose = true })
            }) { return try StructuredOutput.print([p], as: output) }
            let i = try await exitOnRPCError {
                try await endpoint.images { im in
                    try await im.imageStatus(Runtime_V1_ImageStatusRequest.with { $0.image.image = t; $0.verbose = true })
                }
            }
            guard i.hasImage else {
                FileHandle.standardError.write(Data("crispctl: no container, pod or image \(t) (NotFound)\n".utf8))
                throw ExitCode(3)
            }
            try StructuredOutput.print([i], as: output)
        }
    }
}
