import CrispOCI
import Foundation
import Testing

/// The image config's `created` field, as registries write it (RFC 3339: Docker and Buildkit put
/// nanoseconds, other tools none or milliseconds, some an offset instead of `Z`).
@Suite struct ImageConfigCreatedTests {
    func config(created: String?) -> ImageConfiguration {
        ImageConfiguration(architecture: "amd64", os: "linux", rootfs: .init(diffIDs: []), created: created)
    }

    @Test(arguments: [
        ("2023-01-01T00:00:00Z", 1_672_531_200.0),
        ("2023-01-01T00:00:00.123456789Z", 1_672_531_200.123456789),
        ("2019-10-11T13:59:56.123Z", 1_570_802_396.123),
        ("2023-01-01T02:00:00.5+02:00", 1_672_531_200.5),
        ("2023-01-01T00:00:00-01:30", 1_672_536_600.0),
    ])
    func rfc3339TimesParse(text: String, seconds: Double) throws {
        let date = try #require(config(created: text).createdDate)
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.000_01)
    }

    @Test(arguments: ["", "yesterday", "2023-13-01T00:00:00Z", "2023-01-01 00:00:00"])
    func otherTextGivesNoDate(text: String) {
        #expect(config(created: text).createdDate == nil)
    }

    @Test func noCreatedFieldGivesNoDate() {
        #expect(config(created: nil).createdDate == nil)
    }
}
