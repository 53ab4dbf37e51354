import ArgumentParser
import CRIAPI
import Foundation
import SwiftProtobuf
import GRPCCore

/// run: pull an image, make a pod and a container, start it, and show its output; `--rm`
/// removes the pod afterwards. With -i/-t the terminal is attached to the container.
extension Crispctl {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run an image in a new pod and show its output.")
        @OptionGroup var endpoint: Endpoint
        @OptionGroup var stream: StreamOptions
        @Flag(help: "Remove the pod (and container) once it exits.") var rm = false
        @Flag(name: .shortAndLong, help: "Keep stdin open and attach it.") var interactive = false
        @Flag(name: .shortAndLong, help: "Allocate a terminal.") var tty = false
        @Option(name: .customLong("net"), help: "host or pod (pod needs a CNI network).") var network: NetworkMode = .host
        @Option(name: [.customShort("p"), .customLong("publish")], help: "HOST:CONTAINER port (with --net pod).") var ports: [String] = []
        @Option(help: "The pod's and container's name.") var name: String?
        @Argument(help: "Image reference.") var image: String
        @Argument(parsing: .captureForPassthrough, help: "Command and arguments, after --.") var command: [String] = []

        enum NetworkMode: String, ExpressibleByArgument { case host, pod }

        func run() async throws {
            let cmd = command.first == "--" ? Array(command.dropFirst()) : command
            let name = name ?? "run-" + UUID().uuidString.prefix(8).lowercased()
            var pod = Runtime_V1_PodSandboxConfig()
            pod.metadata.name = name
            pod.metadata.namespace = "crispctl"
            pod.metadata.uid = UUID().uuidString.lowercased()
            pod.hostname = name
            pod.logDirectory = "/var/log/crisp-run/" + pod.metadata.uid
            pod.linux.securityContext.namespaceOptions.network = network == .host ? .node : .pod
            pod.linux.securityContext.namespaceOptions.pid = .container
            pod.portMappings = try ports.map { spec in
                let parts = spec.split(separator: ":").compactMap { Int32($0) }
                guard parts.count == 2 else { throw ValidationError("-p \(spec) is not HOST:CONTAINER") }
                return Runtime_V1_PortMapping.with { $0.hostPort = parts[0]; $0.containerPort = parts[1]; $0.protocol = .tcp }
            }
            var ctr = Runtime_V1_ContainerConfig()
            ctr.metadata.name = name
            ctr.image.image = image
            ctr.command = cmd
            ctr.tty = tty
            ctr.stdin = interactive
            ctr.stdinOnce = interactive
            ctr.logPath = "\(name).log"

            let image = image, podConfig = pod, ctrConfig = ctr
            try await exitOnRPCError {
                let present = try await endpoint.images { im in
                    try await im.imageStatus(Runtime_V1_ImageStatusRequest.with { $0.image.image = image }).hasImage
                }
                if !present {
                    _ = try await endpoint.images { im in
                        try await im.pullImage(Runtime_V1_PullImageRequest.with { $0.image.image = image })
                    }
                }
            }
            let podID = try await exitOnRPCError {
                try await endpoint.runtime { try await $0.runPodSandbox(Runtime_V1_RunPodSandboxRequest.with { $0.config = podConfig }).podSandboxID }
            }
            var code: Int32 = 0
            do {
                let id = try await exitOnRPCError {
                    try await endpoint.runtime { rt in
                        let id = try await rt.createContainer(Runtime_V1_CreateContainerRequest.with {
                            $0.podSandboxID = podID
                            $0.config = ctrConfig
                            $0.sandboxConfig = podConfig
                        }).containerID
                        _ = try await rt.startContainer(Runtime_V1_StartContainerRequest.with { $0.containerID = id })
                        return id
                    }
                }
                if interactive || tty {
                    let url = try await exitOnRPCError {
                        try await endpoint.runtime { [interactive, tty] rt in
                            try await rt.attach(Runtime_V1_AttachRequest.with {
                                $0.containerID = id
                                $0.stdin = interactive
                                $0.tty = tty
                                $0.stdout = true
                                $0.stderr = !tty
                            }).url
                        }
                    }
                    _ = try await Terminal.session(url: url, transport: stream.transport, stdin: interactive, tty: tty)
                }
                let status = try await Self.waitForExit(endpoint, id)
                code = status.exitCode
                if !(interactive || tty) {
                    var carry = [UInt8]()
                    let bytes = FileManager.default.contents(atPath: status.logPath).map(Array.init) ?? []
                    Logs.print(Logs.completeLines(bytes, carry: &carry), timestamps: false)
                }
            } catch {
                if rm { try? await Self.removePod(endpoint, podID, logDirectory: podConfig.logDirectory) }
                throw error
            }
            if rm { try await Self.removePod(endpoint, podID, logDirectory: podConfig.logDirectory) } else { FileHandle.standardError.write(Data("pod \(podID)\n".utf8)) }
            if code != 0 { throw ExitCode(code) }
        }

        /// Removes the pod, and the log directory crispctl named for it (no kubelet will).
        static func removePod(_ endpoint: Endpoint, _ id: String, logDirectory: String) async throws {
            try await endpoint.runtime { rt in
                _ = try await rt.stopPodSandbox(Runtime_V1_StopPodSandboxRequest.with { $0.podSandboxID = id })
                _ = try await rt.removePodSandbox(Runtime_V1_RemovePodSandboxRequest.with { $0.podSandboxID = id })
            }
            try? FileManager.default.removeItem(atPath: logDirectory)
        }

        /// Waits on crispd's container events for the exit. The subscription cannot tell when it
        /// is registered, so the status is also asked after each event and once a second: an exit
        /// before the subscription took hold is still seen.
        static func waitForExit(_ endpoint: Endpoint, _ id: String) async throws -> Runtime_V1_ContainerStatus {
            try await endpoint.runtime { rt in
                func status() async throws -> Runtime_V1_ContainerStatus {
                    try await rt.containerStatus(Runtime_V1_ContainerStatusRequest.with { $0.containerID = id }).status
                }
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // An ended or failed subscription leaves the once-a-second question.
                        try? await rt.getContainerEvents(Runtime_V1_GetEventsRequest()) { response in
                            for try await e in response.messages where e.containerID == id && e.containerEventType == .containerStoppedEvent {
                                return
                            }
                        }
                    }
                    group.addTask { try await Task.sleep(for: .seconds(1)) }
                    while true {
                        let s = try await status()
                        if s.state == .containerExited {
                            group.cancelAll()
                            return s
                        }
                        _ = try await group.next()
                        group.addTask { try await Task.sleep(for: .seconds(1)) }
                    }
                }
            }
        }
    }
}
