import CrispCore
import Synchronization
import Testing
@testable import CrispOS

@Suite("ByteChannel")
struct ByteChannelTests {
    @Test("a blocking producer waits while the channel is full, and resumes as the consumer reads")
    func blockingBackpressure() async throws {
        let channel = ByteChannel(capacity: 100)
        let sent = Atomic<Int>(0)
        startThread(name: "test-producer") {
            for i in 0..<10 {
                guard channel.sendBlocking([UInt8](repeating: UInt8(i), count: 60)) else { return }
                sent.add(1, ordering: .sequentiallyConsistent)
            }
            channel.finish()
        }
        try await Task.sleep(for: .milliseconds(300))
        // 60 bytes fit; a second 60 would exceed 100, so the producer is blocked on it.
        #expect(sent.load(ordering: .sequentiallyConsistent) == 1)
        var received: [[UInt8]] = []
        for try await chunk in channel.chunks { received.append(chunk) }
        #expect(received.count == 10 && received.enumerated().allSatisfy { $0.element == [UInt8](repeating: UInt8($0.offset), count: 60) })
        #expect(sent.load(ordering: .sequentiallyConsistent) == 10)
    }

    @Test("an async producer suspends while full; a blocking reader drains it")
    func asyncBackpressure() async throws {
        let channel = ByteChannel(capacity: 100)
        let sent = Atomic<Int>(0)
        let producer = Task {
            for _ in 0..<5 {
                guard await channel.send([UInt8](repeating: 1, count: 80)) else { return }
                sent.add(1, ordering: .sequentiallyConsistent)
            }
            channel.finish()
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(sent.load(ordering: .sequentiallyConsistent) == 1)
        let total = try await runOnThread { () throws -> Int in
            var n = 0
            while let chunk = try channel.readBlocking() { n += chunk.count }
            return n
        }
        await producer.value
        #expect(total == 400)
        #expect(channel.endedNormally)
    }

    @Test("cancelling the consumer ends a blocked producer")
    func consumerCancellation() async throws {
        let channel = ByteChannel(capacity: 10)
        let (done, doneCont) = AsyncStream.makeStream(of: Bool.self)
        startThread(name: "test-producer") {
            while channel.sendBlocking([1, 2, 3, 4, 5, 6, 7, 8]) {}
            doneCont.yield(true)
            doneCont.finish()
        }
        let consumer = Task {
            var n = 0
            for try await _ in channel.chunks { n += 1 }
            return n
        }
        try await Task.sleep(for: .milliseconds(200))
        consumer.cancel()
        await #expect(throws: CancellationError.self) { try await consumer.value }
        var ended = false
        for await d in done { ended = d }
        #expect(ended, "the producer's send returned false")
    }

    @Test("a producer's error reaches the consumer after the queued chunks; a cancelled async producer fails the stream")
    func errors() async throws {
        let channel = ByteChannel()
        #expect(await channel.send([1]))
        channel.finish(error: CrispError(.unavailable, "download failed"))
        #expect(try await channel.next() == [1])
        await #expect(throws: CrispError.self) { try await channel.next() }

        let full = ByteChannel(capacity: 1)
        #expect(await full.send([1]))
        let producer = Task { await full.send([2]) }
        try await Task.sleep(for: .milliseconds(100))
        producer.cancel()
        #expect(await producer.value == false)
        #expect(try full.nextBlocking() == [1])
        #expect(throws: CancellationError.self) { try full.nextBlocking() }
    }
}
