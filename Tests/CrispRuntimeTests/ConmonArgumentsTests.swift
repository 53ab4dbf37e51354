import CrispCore
@testable import CrispRuntime
import Testing

/// conmon's command line: a restore adds `--restore` with the CRIU image directory, so conmon
/// runs `runtime restore --detach` instead of `create` (and the container is running at once).
@Suite struct ConmonArgumentsTests {
    static func options() -> Conmon.CreateOptions {
        var o = Conmon.CreateOptions(id: "c1", name: "k8s_c_p_ns_uid_0", handler: RuntimeHandler(name: "runc", path: "/usr/sbin/runc", root: "/run/r"),
                                     bundle: "/b", exitDirectory: "/exits", logPath: "/logs/c/0.log", socketDirectory: "/attach")
        o.stdin = true
        return o
    }

    @Test func createHasNoRestoreAndRestoreNamesTheImages() {
        let plain = Conmon(path: "/usr/bin/conmon").arguments(Self.options())
        #expect(!plain.contains("--restore"))
        #expect(plain.contains("-i") && plain.contains("--leave-stdin-open"))
        var o = Self.options()
        o.restorePath = "/records/c1/restore/checkpoint"
        let restore = Conmon(path: "/usr/bin/conmon").arguments(o)
        let at = try? #require(restore.firstIndex(of: "--restore"))
        #expect(at.map { restore[$0 + 1] } == "/records/c1/restore/checkpoint")
        #expect(Array(restore.prefix(plain.count)) == plain, "everything else is as for create")
    }

    @Test func criuProblemNamesAMissingBinary() async {
        let problem = await Criu.problem(path: nil)
        #expect(problem?.contains("criu is not installed") == true)
        let broken = await Criu.problem(path: "/bin/false")
        #expect(broken?.contains("exited 1") == true, "\(broken ?? "nil")")
    }

    /// The fuzzer's finding: a mutated command made CreateContainer fail Internal.
    @Test func aCommandTheImageCannotRunIsTheRequestsFault() {
        #expect(ConmonSyncMessage.code(of: #"runc create failed: unable to start container process: exec: "a": executable file not found in $PATH"#) == .invalidArgument)
        #expect(ConmonSyncMessage.code(of: #"unable to start container process: exec: "/nope": stat /nope: no such file or directory"#) == .invalidArgument)
        #expect(ConmonSyncMessage.code(of: "runc create failed: unable to apply cgroup configuration: no such file or directory") == .internal)
        #expect(ConmonSyncMessage.code(of: "conmon exited with 1") == .internal)
    }
}
