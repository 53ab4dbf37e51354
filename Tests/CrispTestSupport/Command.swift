import Foundation

/// Runs a command and returns its exit status and combined output (for test set-up such as
/// mkfs.btrfs and loop mounts). Spawned by Foundation's Process (posix_spawn).
@discardableResult
public func runCommand(_ argv: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0])
    p.arguments = Array(argv.dropFirst())
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
