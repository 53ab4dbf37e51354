import CrispCore
import Foundation
import Testing
@testable import CrispNetwork

/// The real executor against tiny shell-script plugins (no root needed).
@Suite struct ProcessCNIExecutorTests {
    func plugin(_ dir: TempDir, _ name: String, _ body: String) throws {
        try dir.write("bin/" + name, "#!/bin/sh\n" + body + "\n")
        chmod(dir.path + "/bin/" + name, 0o755)
    }

    @Test func runsPluginWithEnvironmentAndStdin() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try plugin(dir, "echo", #"""
            conf=$(cat)
            printf '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.9/8"}],"dns":{"domain":"%s %s %s"}}' "$CNI_COMMAND" "$CNI_IFNAME" "$(printf %s "$conf" | wc -c)"
            """#)
        let exec = ProcessCNIExecutor()
        let path = try exec.findPlugin("echo", in: ["/nonexistent", dir.path + "/bin"])
        #expect(path == dir.path + "/bin/echo")
        let out = try await exec.execute(CNIExecRequest(
            pluginType: "echo", pluginPath: path, command: .add,
            cniEnvironment: ["CNI_COMMAND": "ADD", "CNI_IFNAME": "eth0"], stdin: Array("12345".utf8), timeout: .seconds(10)))
        #expect(out.exitStatus == 0)
        let r = try CNIResult(document: try JSONValue.parse(out.stdout, what: "out"), plugin: "echo")
        #expect(r.dns.domain == "ADD eth0 5")
    }

    @Test func missingPluginNamesDirs() {
        #expect {
            _ = try ProcessCNIExecutor().findPlugin("nope-plugin", in: ["/a", "/b"])
        } throws: { e in
            let e = e as! CrispError
            return e.code == .notFound && e.message.contains("\"nope-plugin\"") && e.message.contains("[/a, /b]")
        }
    }

    @Test func hungPluginIsKilledAtTheTimeout() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try plugin(dir, "hang", "exec sleep 30")
        let start = ContinuousClock.now
        await #expect {
            _ = try await ProcessCNIExecutor().execute(CNIExecRequest(
                pluginType: "hang", pluginPath: dir.path + "/bin/hang", command: .add, cniEnvironment: [:], stdin: [],
                timeout: .milliseconds(300)))
        } throws: { ($0 as! CrispError).code == .deadlineExceeded }
        // Killed, not waited out (the plugin sleeps 30 s). The bound is loose: on a loaded 2-core
        // host the whole suite starting at once has delayed the 300 ms timer by seconds.
        #expect(ContinuousClock.now - start < .seconds(25))
    }

    @Test func chainRunnerSurfacesARealPluginsErrorObject() async throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try plugin(dir, "fails", #"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":999,"msg":"custom failure","details":"more"}'; exit 1"#)
        let runner = CNIChainRunner(executor: ProcessCNIExecutor(), pluginDirs: [dir.path + "/bin"], logger: testLogger)
        let net = try CNINetworkConfigList(bytes: Array(#"{"cniVersion":"1.0.0","name":"n","type":"fails"}"#.utf8), source: "x.conf")
        await #expect {
            _ = try await runner.add(net, CNIRuntimeConf(containerID: "c", netnsPath: "/x"))
        } throws: { e in
            let e = e as! CrispError
            return (e.cause as? CNIPluginError)?.code == 999 && e.message.contains("custom failure (more)")
        }
    }
}
