import NIOCore

/// The `metav1.Status` a v4/v5 client decodes from the error stream: Success, or Failure with
/// reason NonZeroExitCode and the code in `details.causes` (client-go's remotecommand turns that
/// into an exit code error), or Failure with the message of what went wrong.
enum ExecStatus {
    static func success() -> String { #"{"metadata":{},"status":"Success"}"# }

    static func exitCode(_ code: Int32, command: [String]) -> String {
        let message = "command terminated with non-zero exit code: error executing command \(goList(command)), exit code \(code)"
        return #"{"metadata":{},"status":"Failure","message":"# + quote(message)
            + #","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":""# + String(code) + #""}]}}"#
    }

    /// A command as the kubelet prints it (Go's `%v` of a string slice): `[sh -c exit 3]`.
    static func goList(_ command: [String]) -> String { "[" + command.joined(separator: " ") + "]" }

    static func failure(_ message: String) -> String {
        #"{"metadata":{},"status":"Failure","message":"# + quote(message) + #","reason":"InternalError","code":500}"#
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
