import Foundation

/// The `metav1.Status` a v4/v5 client decodes from the error stream: Success, or Failure with
/// reason NonZeroExitCode and the code in `details.causes` (client-go's remotecommand turns that
/// into an exit code error), or Failure with the message of what went wrong.
enum ExecStatus {
    struct Status: Encodable {
        struct Metadata: Encodable {}
        struct Details: Encodable { var causes: [Cause] }
        struct Cause: Encodable { var reason: String; var message: String }
        var metadata = Metadata()
        var status: String
        var message: String?
        var reason: String?
        var details: Details?
        var code: Int?
    }

    static func encode(_ s: Status) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? encoder.encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? #"{"metadata":{},"status":"Failure"}"#
    }

    static func success() -> String { encode(Status(status: "Success")) }

    static func exitCode(_ code: Int32, command: [String]) -> String {
        let message = "command terminated with non-zero exit code: error executing command \(goList(command)), exit code \(code)"
        return encode(Status(status: "Failure", message: message, reason: "NonZeroExitCode",
                             details: .init(causes: [.init(reason: "ExitCode", message: String(code))])))
    }

    /// A command as the kubelet prints it (Go's `%v` of a string slice): `[sh -c exit 3]`.
    static func goList(_ command: [String]) -> String { "[" + command.joined(separator: " ") + "]" }

    static func failure(_ message: String) -> String {
        encode(Status(status: "Failure", message: message, reason: "InternalError", code: 500))
    }
}
