/// What a command run to completion in a container (ExecSync) gave.
public struct ExecResult: Sendable, Equatable {
    public static let outputCap = 16 << 20
    public var exitCode: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// True when stdout or stderr exceeded `outputCap` and was cut there.
    public var truncated: Bool

    public init(exitCode: Int32, stdout: [UInt8], stderr: [UInt8], truncated: Bool) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
        self.truncated = truncated
    }
}
