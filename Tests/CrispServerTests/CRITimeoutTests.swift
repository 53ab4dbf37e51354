@testable import CrispServer
import Testing

/// CRI timeouts of any Int64 become Durations a task can sleep on (the fuzzer's Int64.max killed
/// crispd inside Task.sleep).
@Suite struct CRITimeoutTests {
    @Test(arguments: [Int64.max, Int64.min, -1, 0, 30, Int64(Int32.max) + 1])
    func everyTimeoutIsASleepableDuration(seconds: Int64) async throws {
        let d = CRITimeout.duration(seconds: seconds)
        #expect(d >= .zero && d <= .seconds(CRITimeout.maximumSeconds))
        if seconds > 0 && seconds <= CRITimeout.maximumSeconds { #expect(d == .seconds(seconds)) }
        // The uncapped value trapped where the sleep is scheduled on the clock, so the sleep must
        // really start: it races a short one, and the group cancels it when that one ends.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: d) }
            group.addTask { try await Task.sleep(for: .milliseconds(100)) }
            try await group.next()
            group.cancelAll()
        }
    }
}
