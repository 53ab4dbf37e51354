import Foundation
import Testing

/// Protos/runtime/v1/api.proto must stay wire-identical to the Kubernetes CRI definition: protoc
/// compiles both to descriptor sets (no comments, no source info), which must be byte-equal.
@Test func protoIsWireIdenticalToTheReference() throws {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let reference = repo.deletingLastPathComponent().appendingPathComponent("shared/reference/cri-api/api.proto")
    guard FileManager.default.fileExists(atPath: reference.path) else {
        print("skipped: reference proto not found at \(reference.path)")
        return
    }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/protoc") else {
        print("skipped: /usr/bin/protoc is not installed (apt protobuf-compiler)")
        return
    }
    let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("proto-check-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: tmp) }
    for side in ["ref", "ours"] {
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent(side), withIntermediateDirectories: true)
    }
    // Debian's protoc predates the debug_redact option, which does not affect the wire format.
    let refText = try String(contentsOf: reference, encoding: .utf8).replacingOccurrences(of: " [debug_redact = true]", with: "")
    try refText.write(to: tmp.appendingPathComponent("ref/api.proto"), atomically: true, encoding: .utf8)
    try FileManager.default.copyItem(at: repo.appendingPathComponent("Protos/runtime/v1/api.proto"),
                                     to: tmp.appendingPathComponent("ours/api.proto"))
    for side in ["ref", "ours"] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/protoc")
        p.arguments = ["-I", tmp.appendingPathComponent(side).path,
                       "--descriptor_set_out=" + tmp.appendingPathComponent("\(side).pb").path, "api.proto"]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }
    let a = try Data(contentsOf: tmp.appendingPathComponent("ref.pb"))
    let b = try Data(contentsOf: tmp.appendingPathComponent("ours.pb"))
    #expect(!a.isEmpty)
    #expect(a == b, "Protos/runtime/v1/api.proto differs from the CRI reference on the wire")
}
