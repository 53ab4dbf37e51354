import CrispConfig
import Foundation
import Testing

/// The configuration reference in README.md is generated from the schema (`make docs`); this
/// test fails when someone changes one without the other.
@Test func readmeReferenceMatchesTheSchema() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    let begin = "<!-- config-reference:begin -->\n", end = "<!-- config-reference:end -->"
    let start = try #require(readme.range(of: begin))
    let stop = try #require(readme.range(of: end))
    let section = String(readme[start.upperBound..<stop.lowerBound])
    #expect(section == ConfigSchema.referenceMarkdown(), "README.md is stale: run `make docs`")
}
