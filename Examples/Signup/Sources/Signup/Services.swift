import Drover
import Foundation
import Synchronization

/// What the app's jobs share, built once per worker process by `Drover.main(jobs:services:)` and
/// handed to every job of that worker through `context.services(Mailer.self)`.
///
/// A mailer that writes each message into an outbox directory (`SIGNUP_OUTBOX`), which must exist:
/// a worker started before it does fails its setup and is started again after the supervisor's
/// backoff. With `SIGNUP_JOURNAL`, it keeps that file open and appends a line when it starts, for
/// each message it sends, and when it shuts down: `setup`, `sent` and `shutdown`, each with the
/// worker's pid and this mailer's own id.
final class Mailer: ServicesShutdown {
    let outbox: String
    /// This instance, told apart from the mailers of other workers and of earlier starts.
    let id = UUID().uuidString
    /// The journal's descriptor, opened with O_APPEND; -1 without one.
    private let journal: Int32
    private let sent = Mutex(0)

    struct JournalUnavailable: Error, CustomStringConvertible {
        let path: String
        let reason: String
        var description: String { "cannot open the journal \(path): \(reason)" }
    }

    struct OutboxMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "the outbox \(path) is not a directory: create it, or set SIGNUP_OUTBOX" }
    }

    init(environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        outbox = environment["SIGNUP_OUTBOX"] ?? FileManager.default.temporaryDirectory.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: outbox, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw OutboxMissing(path: outbox)
        }
        if let path = environment["SIGNUP_JOURNAL"] {
            journal = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard journal >= 0 else { throw JournalUnavailable(path: path, reason: String(cString: strerror(errno))) }
        } else {
            journal = -1
        }
        note("setup")
    }

    /// Writes a message into the outbox.
    func send(to address: String, name: String, body: String, job: Int) throws {
        try "To: \(address)\n\(body)".write(toFile: "\(outbox)/\(name)", atomically: true, encoding: .utf8)
        sent.withLock { $0 += 1 }
        note("sent \(job)")
    }

    func shutdown() async throws {
        note("shutdown \(sent.withLock { $0 })")
        if journal >= 0 { close(journal) }
    }

    /// One line, one write (O_APPEND: the lines of several workers never mix).
    private func note(_ what: String) {
        let words = what.split(separator: " ", maxSplits: 1)
        let line = ([String(words[0]), String(getpid()), id] + words.dropFirst().map(String.init)).joined(separator: " ") + "\n"
        guard journal >= 0 else { return }
        let bytes = Array(line.utf8)
        _ = write(journal, bytes, bytes.count)
    }
}
