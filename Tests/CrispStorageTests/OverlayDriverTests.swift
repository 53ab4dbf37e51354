import CrispCore
import CrispOS
import CrispTestSupport
import Glibc
import Testing
@testable import CrispStorage

@Suite("Overlay driver")
struct OverlayDriverTests {
    @Test("a container on a 128-layer image mounts (short link names keep the options under a page)")
    func manyLayers() async throws {
        try await withStorage("overlay") { f in
            var parent: Layer?
            for i in 0..<128 {
                parent = try await f.layer([.file("layer\(i)", "\(i)"), .file("shared", "from \(i)")], parent: parent)
            }
            let image = try await f.image("example.com/deep:128", top: parent)
            let c = try await f.storage.createContainer(CreateContainerOptions(name: "deep", imageID: image.id))
            let root = try await f.storage.mountContainer(c.id)
            #expect(try Mounts.isMountPoint(root))
            #expect(listing(root)?.count == 129)
            #expect(fileText(root + "/layer0") == "0")
            #expect(fileText(root + "/shared") == "from 127", "the top layer wins")
            let lower = readSmallFile(f.tmp.sub("root/overlay/\(c.layerID.rawValue)/lower")) ?? ""
            #expect(lower.split(separator: ":").count == 128)
            try await f.storage.unmountContainer(c.id)
            #expect(try !Mounts.isMountPoint(root))
        }
    }

    @Test("layout: diff, work, merged, link and lower files; l/ links point at diff")
    func layout() async throws {
        try await withStorage("overlay") { f in
            let base = try await f.layer([.file("a", "a")])
            let top = try await f.layer([.file("b", "b")], parent: base)
            let home = f.tmp.sub("root/overlay")
            for d in ["diff", "work", "merged", "link", "lower"] { #expect(lstatOf("\(home)/\(top.id.rawValue)/\(d)") != nil) }
            let link = readSmallFile("\(home)/\(base.id.rawValue)/link") ?? ""
            #expect(link.count == OverlayDriver.linkLength)
            #expect(readSmallFile("\(home)/\(top.id.rawValue)/lower") == "l/\(link)")
            #expect(fileText("\(home)/l/\(link)/a") == "a")
        }
    }

    @Test("the start-up check refuses a filesystem where overlay cannot work")
    func refusesUnusableBackingFilesystem() async throws {
        // An overlay mount cannot be the upper layer of another overlay mount.
        let tmp = try TempDirectory()
        defer { tmp.remove() }
        for d in ["lower", "upper", "work", "merged"] { mkdir(tmp.sub(d), 0o755) }
        try Mounts.mount(source: "overlay", target: tmp.sub("merged"), type: "overlay",
                         data: "lowerdir=\(tmp.sub("lower")),upperdir=\(tmp.sub("upper")),workdir=\(tmp.sub("work"))")
        defer { try? Mounts.unmount(tmp.sub("merged"), detach: true) }
        do {
            let f = try await StorageFixture.make("overlay", root: tmp.sub("merged/root"))
            await f.close()
            print("note: this kernel allows overlay on overlay here; nothing to refuse")
        } catch let e as CrispError {
            #expect(e.code == .failedPrecondition)
            #expect(e.message.contains("overlay"))
        }
    }
}
