public import CrispCore
import CrispOS
public import Foundation

/// Records and bundle files (mode 0600 unless told) through CrispOS's atomic write, with crisp's
/// typed errors.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, mode: UInt32 = 0o600, durable: Bool = true) throws(CrispError) {
        do { try writeFileAtomically(path, bytes: Array(data), mode: mode, durable: durable) } catch {
            throw CrispError(.internal, "cannot write \(path)", cause: error as? SystemCallError)
        }
    }
}
