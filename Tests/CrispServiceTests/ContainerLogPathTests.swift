import CrispCore
import CrispService
import Testing

/// A container's log stays inside its pod's log directory (issue 16's hostile requests).
@Suite struct ContainerLogPathTests {
    @Test func relativePathsLandInsideThePodLogDirectory() throws {
        #expect(try ContainerLogPath.resolve("app/0.log", podLogDirectory: "/var/log/pods/ns_p_u", ownDirectory: "/r/c")
                == "/var/log/pods/ns_p_u/app/0.log")
        #expect(try ContainerLogPath.resolve("a//./b.log", podLogDirectory: "/l", ownDirectory: "/r/c") == "/l/a/./b.log")
        #expect(try ContainerLogPath.resolve("c.log", podLogDirectory: "", ownDirectory: "/r/c") == "/r/c/c.log")
        #expect(try ContainerLogPath.resolve("", podLogDirectory: "/l", ownDirectory: "/r/c") == "/r/c/console.log")
        #expect(try ContainerLogPath.resolve("..x/0.log", podLogDirectory: "/l", ownDirectory: "/r/c") == "/l/..x/0.log")
    }

    /// crictl users without a pod log directory name the file they want.
    @Test func absolutePathsStandWhenThePodHasNoLogDirectory() throws {
        #expect(try ContainerLogPath.resolve("/tmp/x/hello.log", podLogDirectory: "", ownDirectory: "/r/c") == "/tmp/x/hello.log")
        #expect(throws: CrispError.self) { try ContainerLogPath.resolve("/tmp/../etc/x.log", podLogDirectory: "", ownDirectory: "/r/c") }
    }

    @Test(arguments: ["/etc/passwd", "../x.log", "app/../../x.log", "app/..", ".", "a/.", "a\0b"])
    func escapesAreRefused(_ path: String) {
        #expect(throws: CrispError.self) { try ContainerLogPath.resolve(path, podLogDirectory: "/l", ownDirectory: "/r/c") }
    }

    @Test func podLogDirectoriesMustBeAbsolute() throws {
        try ContainerLogPath.validateDirectory("")
        try ContainerLogPath.validateDirectory("/var/log/pods/x")
        #expect(throws: CrispError.self) { try ContainerLogPath.validateDirectory("logs") }
        #expect(throws: CrispError.self) { try ContainerLogPath.validateDirectory("../../tmp") }
    }
}
