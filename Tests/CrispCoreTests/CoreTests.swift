import CrispCore
import Testing

@Suite struct DigestTests {
    static let valid = "sha256:" + String(repeating: "ab", count: 32)

    @Test func parsesAndPrints() throws {
        let d = try Digest(parsing: Self.valid)
        #expect(d.algorithm == .sha256)
        #expect(d.description == Self.valid)
        #expect(d.short == "abababababab")
    }

    @Test(arguments: [
        "sha256", "sha256:", "md5:" + String(repeating: "a", count: 32), "sha256:" + String(repeating: "A", count: 64),
        "sha256:" + String(repeating: "a", count: 63), "sha256:" + String(repeating: "g", count: 64),
    ])
    func rejectsInvalid(_ s: String) {
        #expect(throws: CrispError.self) { try Digest(parsing: s) }
    }

    @Test func fromBytes() {
        let d = Digest(sha256Bytes: [0x00, 0x0f, 0xf0, 0xff] + Array(repeating: 0, count: 28))
        #expect(d.hex.hasPrefix("000ff0ff"))
        #expect(d.hex.count == 64)
    }
}

@Suite struct IdentifierTests {
    @Test func randomIdsAreValidAndDistinct() throws {
        let a = SandboxID.random(), b = SandboxID.random()
        #expect(a != b)
        #expect(try SandboxID(parsing: a.rawValue) == a)
        #expect(a.short.count == 12)
    }

    @Test func rejectsShortOrUpperCase() {
        #expect(throws: CrispError.self) { try ContainerID(parsing: "abc") }
        #expect(throws: CrispError.self) { try ContainerID(parsing: String(repeating: "A", count: 64)) }
    }

    @Test func errorDescriptionCarriesCause() {
        let e = CrispError(.internal, "mount /x", cause: SystemCallError("mount", "/x", errno: 1))
        #expect(e.description.hasPrefix("mount /x: mount(/x): "))
    }
}
