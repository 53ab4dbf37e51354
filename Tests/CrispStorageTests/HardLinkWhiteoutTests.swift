import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

@Suite("Hard links through whiteouts (overlay)")
struct HardLinkWhiteoutTests {
    /// Layer 1 has the targets; layer 2 deletes one (whiteout), hides another (opaque dir) and
    /// deletes a parent directory of a third.
    func lowers(_ tmp: TempDirectory) throws -> [String] {
        let l1 = tmp.sub("l1"), l2 = tmp.sub("l2")
        makeDir(l1); makeDir(l2)
        _ = try apply(try TarBuilder.build([.file("usr/bin/tool", "tool"), .file("opq/old", "old"), .file("gone/sub/f", "f"),
                                            .file("keep/k", "k")]), to: l1, whiteouts: .overlay)
        _ = try apply(try TarBuilder.build([.file("usr/bin/.wh.tool", ""), .dir("opq"), .file("opq/.wh..wh..opq", ""),
                                            .file("opq/new", "new"), .file(".wh.gone", "")]), to: l2, whiteouts: .overlay, lowers: [l1])
        return [l2, l1]
    }

    @Test("a link to a lower file deleted or hidden by an intermediate layer fails like tar; nothing stale is linked",
          arguments: ["usr/bin/tool", "opq/old", "gone/sub/f"])
    func hiddenTargetFails(linkTarget: String) throws {
        let tmp = try TempDirectory()
        defer { tmp.removeAll() }
        let lowerDirs = try lowers(tmp)
        let upper = tmp.sub("l3")
        makeDir(upper)
        do {
            _ = try apply(try TarBuilder.build([.hardlink("alias", to: linkTarget)]), to: upper, whiteouts: .overlay, lowers: lowerDirs)
            Issue.record("a hard link to the hidden \(linkTarget) was applied")
        } catch let e as CrispError {
            #expect(e.code == .invalidArgument)
            #expect(e.message.contains(linkTarget))
        }
        #expect(lstatOf(upper + "/alias") == nil)
        #expect(lstatOf(upper + "/" + linkTarget) == nil, "the stale lower file was not copied up")
    }

    @Test("links to visible lower files still work: untouched, and recreated inside an opaque dir")
    func visibleTargetsLink() throws {
        let tmp = try TempDirectory()
        defer { tmp.removeAll() }
        let lowerDirs = try lowers(tmp)
        let upper = tmp.sub("l3")
        makeDir(upper)
        _ = try apply(try TarBuilder.build([.hardlink("k2", to: "keep/k"), .hardlink("n2", to: "opq/new")]), to: upper,
                      whiteouts: .overlay, lowers: lowerDirs)
        #expect(fileText(upper + "/k2") == "k")
        #expect(fileText(upper + "/n2") == "new")
        #expect(lstatOf(upper + "/n2")?.st_ino == lstatOf(upper + "/opq/new")?.st_ino)
    }

    @Test("a link to a name this layer whited out fails instead of linking the whiteout device")
    func targetWhitedOutInSameLayer() throws {
        let tmp = try TempDirectory()
        defer { tmp.removeAll() }
        let lowerDirs = try lowers(tmp)
        let upper = tmp.sub("l3")
        makeDir(upper)
        #expect(throws: CrispError.self) {
            _ = try apply(try TarBuilder.build([.file("keep/.wh.k", ""), .hardlink("k2", to: "keep/k")]), to: upper,
                          whiteouts: .overlay, lowers: lowerDirs)
        }
        #expect(lstatOf(upper + "/k2") == nil)
    }
}
