public import CrispCore
public import CrispOCI
public import Foundation

/// Bundle files and records: written atomically (temp, optional fsync, rename).
public enum Bundle {
    public static func write(spec: RuntimeSpec, to bundle: String) throws(CrispError) {
        do { try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true) } catch {
            throw CrispError(.internal, "cannot create bundle \(bundle): \(error.localizedDescription)")
        }
        // Read by the runtime at once; after a power loss the container is gone with it, so the
        // file need not reach the disk.
        try writeJSON(spec, to: bundle + "/config.json", durable: false)
    }

    /// `durable: false` skips the fsync: the rename still makes the write all-or-nothing for a
    /// crashed process, only not for a power loss (`storage_sync = none`).
    public static func writeJSON(_ value: some Encodable, to path: String, durable: Bool = true) throws(CrispError) {
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            data = try encoder.encode(value)
        } catch {
            throw CrispError(.internal, "cannot encode \(path): \(error)")
        }
        try AtomicFile.write(data, to: path, durable: durable)
    }
}
