import CTestSupport
import Foundation
import Synchronization

/// A stand-in for systemd's notification socket: set ``path`` as `NOTIFY_SOCKET` of a process under
/// test and read the datagrams it sends, with the sender's pid.
public final class NotifyListener: Sendable {
    public struct Message: Sendable, CustomStringConvertible {
        public let pid: pid_t
        public let fields: [String: String]
        public let text: String
        public let receivedAt: Date
        public var description: String { "[\(pid)] \(text.replacingOccurrences(of: "\n", with: " | "))" }
    }

    public let path: String
    private let descriptor: Int32
    private let received = Mutex<[Message]>([])
    private let stopped = Mutex(false)

    public init() throws {
        path = "/tmp/drover-notify-\(UInt32.random(in: 0 ... .max)).sock"
        descriptor = drover_test_notify_socket(path)
        guard descriptor >= 0 else {
            throw DeadlineExceeded(description: "cannot bind a notification socket at \(path): \(String(cString: strerror(errno)))")
        }
        let thread = Thread { [self] in receiveLoop() }
        thread.name = "notify listener"
        thread.start()
    }

    deinit {
        stopped.withLock { $0 = true }
        unlink(path)
    }

    private func receiveLoop() {
        var buffer = [CChar](repeating: 0, count: 65_536)
        while !stopped.withLock({ $0 }) {
            var pid: pid_t = 0
            let n = drover_test_notify_receive(descriptor, &buffer, buffer.count, &pid, 100)
            guard n >= 0 else { continue }
            let text = String(cString: buffer)
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1)
                fields[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            received.withLock { $0.append(Message(pid: pid, fields: fields, text: text, receivedAt: Date())) }
        }
        close(descriptor)
    }

    /// Everything received so far, in order.
    public var messages: [Message] { received.withLock { $0 } }

    /// Waits until a message satisfies `predicate`, and returns it.
    @discardableResult
    public func waitFor(
        _ what: String, timeout: Duration = .seconds(30), _ predicate: (Message) -> Bool
    ) throws -> Message {
        var found: Message? = nil
        try waitUntil(what, timeout: timeout) {
            found = messages.first(where: predicate)
            return found != nil
        }
        return found!
    }
}
