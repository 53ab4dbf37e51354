public import CrispCore
import Glibc

extension Spawn {
    /// What a program run to completion left behind.
    public struct Output: Sendable {
        /// Exit status, or 128+signal.
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
        /// The timeout passed and the child was killed.
        public var timedOut: Bool
        public var stdoutTruncated: Bool
        public var stderrTruncated: Bool
        public var stderrText: String {
            let space: Set<UInt8> = [9, 10, 13, 32]
            let s = stderr.drop { space.contains($0) }
            return String(decoding: s.reversed().drop { space.contains($0) }.reversed(), as: UTF8.self)
        }
    }

    /// Runs a program to completion: writes `stdin` to its fd 0 (unless `o.descriptors[0]` is
    /// set; otherwise without `stdin` fd 0 is /dev/null), captures stdout and stderr (each up to
    /// `cap` bytes; the rest is drained so the child never blocks), and races the child's exit
    /// against `timeout`. When the time is up, `onTimeout` runs first — the child may have started
    /// processes of its own (runc exec's container process) that must go while it can still reap
    /// them; the child gets 2 s to exit — then `onTimeout` runs once more (for what the child
    /// started meanwhile) and the child is killed (SIGKILL, by PID). A cancelled
    /// caller kills the child at once. Either way the child is reaped before this returns.
    public static func run(_ o: Options, stdin: [UInt8]? = nil, timeout: Duration? = nil, cap: Int = 16 << 20,
                           onTimeout: (@Sendable () -> Void)? = nil) async throws(CrispError) -> Output {
        let out = try Pipe2(), err = try Pipe2()
        let input: Pipe2?
        do { input = stdin == nil ? nil : try Pipe2() } catch {
            out.closeBoth(); err.closeBoth()
            throw error
        }
        var options = o
        options.descriptors[1] = out.write
        options.descriptors[2] = err.write
        if let input { options.descriptors[0] = input.read }
        let child: SpawnedChild
        do { child = try start(options) } catch {
            out.closeBoth(); err.closeBoth(); input?.closeBoth()
            throw error
        }
        out.closeWrite()
        err.closeWrite()
        input?.closeRead()
        let pump = OutputPump(child: child.pidfd, stdout: out.read, stderr: err.read, stdin: input?.write,
                              input: stdin ?? [], cap: cap)

        enum Event: Sendable { case exited(OutputPump.Captured), timedOut, graceOver, cancelled }
        let (captured, timedOut) = await withTaskGroup(of: Event.self, returning: (OutputPump.Captured, Bool).self) { group in
            group.addTask {
                .exited(await runOnThread(name: "crisp-spawn-io") { pump.run() })
            }
            // Always there, so a cancelled caller is noticed even without a timeout.
            group.addTask {
                do {
                    if let timeout { try await Task.sleep(for: timeout) } else { while true { try await Task.sleep(for: .seconds(3600)) } }
                    return .timedOut
                } catch { return .cancelled }
            }
            var timedOut = false
            while let event = await group.next() {
                switch event {
                case .exited(let c):
                    group.cancelAll()
                    return (c, timedOut)
                case .timedOut:
                    timedOut = true
                    if let onTimeout {
                        onTimeout()
                        group.addTask {
                            do { try await Task.sleep(for: .seconds(2)) } catch {}
                            return .graceOver
                        }
                    } else {
                        child.signal(SIGKILL)
                    }
                case .graceOver:
                    // Asked again: what the child started late in the grace period (runc exec writes
                    // its process's pid file only once the process runs) must not outlive it.
                    onTimeout?()
                    child.signal(SIGKILL)
                case .cancelled:
                    child.signal(SIGKILL)
                }
            }
            return (OutputPump.Captured(), timedOut)  // unreachable: the pump always finishes
        }
        let status = child.reap()
        return Output(status: status, stdout: captured.stdout, stderr: captured.stderr, timedOut: timedOut,
                      stdoutTruncated: captured.stdoutTruncated, stderrTruncated: captured.stderrTruncated)
    }
}
