import CSystemd
import DroverPersistence
import Foundation
import Synchronization

/// Where this process's log lines go and from which level, decided once by ``Log/configure(minimum:environment:)``:
/// journald when stderr is the journal, else logfmt lines on stderr.
enum LogOutput {
    enum Destination: Sendable, Equatable {
        case stderr
        case journal
    }

    private static let settings = Mutex((minimum: Log.Level.info, destination: Destination.stderr))
    /// One line is one `write`, whole, whatever the threads.
    private static let stderrLock = Mutex(())

    static func configure(minimum: Log.Level, environment: [String: String]) {
        settings.withLock { $0 = (minimum, stderrIsJournal(environment) ? .journal : .stderr) }
    }

    static var minimum: Log.Level { settings.withLock { $0.minimum } }

    /// Sends `entry` to the journal, or writes it to stderr as a logfmt line (also when the journal
    /// cannot be reached).
    static func write(_ entry: LogEntry) {
        if settings.withLock({ $0.destination }) == .journal, sendToJournal(entry.journalFields) { return }
        let line = entry.logfmt(time: timestamp()) + "\n"
        stderrLock.withLock { _ in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Whether stderr is the stream `JOURNAL_STREAM` ("device:inode") names, as sd_journal_stream_fd
    /// sets it up for a service's stdout and stderr.
    static func stderrIsJournal(_ environment: [String: String]) -> Bool {
        guard let stream = environment["JOURNAL_STREAM"] else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Sends one entry with sd_journal_sendv(3); false when journald cannot be reached.
    private static func sendToJournal(_ fields: [(String, String)]) -> Bool {
        var buffers = fields.map { Array("\($0.0)=\($0.1)".utf8) }
        let count = buffers.count
        return buffers.withUnsafeMutableBufferPointer { all -> Bool in
            var vectors: [iovec] = []
            vectors.reserveCapacity(count)
            for index in 0..<count {
                all[index].withUnsafeMutableBytes { bytes in
                    vectors.append(iovec(iov_base: bytes.baseAddress, iov_len: bytes.count))
                }
            }
            return sd_journal_sendv(vectors, Int32(count)) >= 0
        }
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return DatabaseTime.utcText(Date(timeIntervalSince1970: Double(now.tv_sec) + Double(now.tv_nsec / 1_000_000) / 1000),
                                    milliseconds: true)
    }
}
