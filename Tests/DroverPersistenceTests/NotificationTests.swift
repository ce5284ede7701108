import DroverPersistence
import DroverTestSupport
import Foundation
import Testing

@Suite("LISTEN/NOTIFY")
struct NotificationTests {
    private func channelName() -> String { "drover_test_\(UInt32.random(in: 0 ... .max))" }

    @Test("a waiting listener receives a notification sent by another connection")
    func receivesNotification() throws {
        let channel = channelName()
        let listener = try TestDatabase.connect()
        try listener.listen(channel)
        let senderPID = try BackgroundWork { () -> Int32 in
            let sender = try TestDatabase.connect()
            try sender.notify(channel, payload: "job 42 it's ready")
            return sender.backendPID
        }.value()
        let received = try listener.waitForNotifications(timeout: .seconds(10))
        #expect(received == [DatabaseNotification(channel: channel, payload: "job 42 it's ready", senderPID: senderPID)])
    }

    @Test("a wait that gets nothing returns empty after its timeout, sleeping rather than spinning")
    func timeoutWithoutBusyPolling() throws {
        let listener = try TestDatabase.connect()
        try listener.listen(channelName())
        let cpuBefore = threadCPUTime()
        let start = ContinuousClock.now
        let received = try listener.waitForNotifications(timeout: .milliseconds(400))
        let elapsed = ContinuousClock.now - start
        let cpu = threadCPUTime() - cpuBefore
        #expect(received.isEmpty)
        #expect(elapsed >= .milliseconds(400), "returned early, after \(elapsed)")
        // A loop polling without sleeping would burn the whole 400 ms of CPU.
        #expect(cpu < 0.05, "the wait used \(cpu) s of CPU")
    }

    @Test("notifications sent inside a transaction arrive when it commits, not before")
    func deliveredOnCommit() throws {
        let channel = channelName()
        let listener = try TestDatabase.connect()
        try listener.listen(channel)
        let sender = try TestDatabase.connect()
        try sender.withTransaction { sender in
            try sender.notify(channel, payload: "one")
            #expect(try listener.waitForNotifications(timeout: .milliseconds(200)).isEmpty)
        }
        #expect(try listener.waitForNotifications(timeout: .seconds(10)).map(\.payload) == ["one"])
    }

    @Test("after its connection is re-established the listener listens again, and says it may have missed some")
    func relistensAfterReconnect() throws {
        let channel = channelName()
        let listener = try TestDatabase.connect()
        try listener.listen(channel)
        let admin = try TestDatabase.connect()
        let oldPID = listener.backendPID
        try admin.execute("SELECT pg_terminate_backend(\(oldPID), 5000)")
        // The first wait notices the dead connection, reconnects and returns at once with nothing:
        // notifications sent while it was gone are lost, so the caller must look at the tables.
        #expect(try listener.waitForNotifications(timeout: .seconds(10)).isEmpty)
        #expect(listener.backendPID != oldPID)
        try admin.notify(channel, payload: "after")
        #expect(try listener.waitForNotifications(timeout: .seconds(10)).map(\.payload) == ["after"])
    }
}

extension NotificationTests {
    @Test("a connection dropped during a wait is re-established at once; the wait returns so the caller can look")
    func dropDuringWait() throws {
        let channel = "drover_test_\(UInt32.random(in: 0 ... .max))"
        let listener = try TestDatabase.connect()
        try listener.listen(channel)
        let oldPID = listener.backendPID
        let admin = try TestDatabase.connect()
        let waiting = BackgroundWork { [listener = UncheckedBox(listener)] () -> [DatabaseNotification] in
            try listener.value.waitForNotifications(timeout: .seconds(60))
        }
        try waitUntil("the listener is idle in its wait") {
            try admin.query("SELECT state FROM pg_stat_activity WHERE pid = \(oldPID)")
                .first?.decode("state", as: String?.self) == "idle"
        }
        try admin.execute("SELECT pg_terminate_backend(\(oldPID), 5000)")
        #expect(try waiting.value(timeout: .seconds(20)).isEmpty)
        #expect(listener.backendPID != oldPID)
        try admin.notify(channel, payload: "still listening")
        #expect(try listener.waitForNotifications(timeout: .seconds(10)).map(\.payload) == ["still listening"])
    }
}

/// CPU time consumed by the calling thread, in seconds.
func threadCPUTime() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
