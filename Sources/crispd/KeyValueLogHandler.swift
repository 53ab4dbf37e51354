import Foundation
import Logging
import Synchronization

/// One line per event on stderr: `time=… level=… msg="…" key=value…`. The level is shared by
/// every logger so that a SIGHUP reload changes it everywhere at once.
struct KeyValueLogHandler: LogHandler {
    /// Shared, reloadable minimum level.
    final class Level: Sendable {
        private let value: Mutex<Logger.Level>
        init(_ level: Logger.Level) { value = Mutex(level) }
        var current: Logger.Level {
            get { value.withLock { $0 } }
            set { value.withLock { $0 = newValue } }
        }
    }

    let label: String
    let sharedLevel: Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    var logLevel: Logger.Level {
        get { sharedLevel.current }
        set { sharedLevel.current = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = "time=\(Self.timestamp()) level=\(event.level) msg=\(Self.quote(event.message.description))"
        if !label.isEmpty { line += " logger=\(label)" }
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(Self.quote(value.description))"
        }
        line += "\n"
        // A single write(2) per line keeps lines from concurrent tasks whole.
        line.utf8CString.withUnsafeBufferPointer { buffer in
            _ = write(2, buffer.baseAddress, buffer.count - 1)
        }
    }

    static func quote(_ s: String) -> String {
        if !s.isEmpty, !s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }) { return s }
        // Escaped by hand, not with Foundation's replacingOccurrences: that is CoreFoundation's
        // string search, three passes per value and code crispd would otherwise not map.
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int(ts.tv_nsec / 1000))
    }
}
