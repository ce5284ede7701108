import DroverPersistence
import DroverQueue
import Foundation

/// How a worker learns, without polling, that jobs may be waiting for it or that a job it runs was
/// cancelled. Polling stays as the fallback for anything missed.
protocol WakeSource: AnyObject {
    /// The descriptor to wait on; nil while there is none (the database is away).
    var descriptor: Int32? { get }
    /// Reads what arrived: whether to claim now, and whether to look for cancellations of `processID`'s jobs.
    func read(processID: Int) -> (claim: Bool, cancellations: Bool)
    /// What arrived while the process was doing something else and is already read from the
    /// descriptor (so that it will not become readable for it); checked before every wait.
    func alreadyReceived(processID: Int) -> (claim: Bool, cancellations: Bool)
}

/// PostgreSQL: LISTEN on the schema's channel. An enqueue notifies with the queue's name, a
/// cancellation with `cancel <process id>`.
final class NotificationWakeSource: WakeSource {
    private let session: DatabaseSession<Connection>
    private let queues: QueueSelection

    init(session: DatabaseSession<Connection>, channel: String, queues: QueueSelection) {
        self.session = session
        self.queues = queues
        session.onConnect = { connection in try connection.listen(channel) }
    }

    var descriptor: Int32? { session.socketDescriptor }

    /// libpq reads notifications off the socket while it waits for a statement's answer and queues
    /// them: the socket is not readable for them afterwards. Draining that queue costs no system call.
    func alreadyReceived(processID: Int) -> (claim: Bool, cancellations: Bool) {
        guard descriptor != nil else { return (false, false) }
        return read(processID: processID)
    }

    func read(processID: Int) -> (claim: Bool, cancellations: Bool) {
        let notifications = (try? session.run { try $0.waitForNotifications(timeout: .zero) }) ?? nil
        var wake = (claim: false, cancellations: false)
        for notification in notifications ?? [] {
            if let process = PostgresDriver.cancelledProcess(inNotification: notification.payload) {
                if process == processID { wake.cancellations = true }
            } else if queues.matches(notification.payload) {
                wake.claim = true
            }
        }
        return wake
    }
}

/// SQLite: inotify on the wake file next to the database, which every change that makes jobs ready
/// (or asks for a cancellation) touches after its commit (``SQLiteConnection/wakeWorkers()``). It
/// says nothing of which queue: every worker on the host looks.
final class WakeFileSource: WakeSource {
    private let inotify: Int32

    init(path: String) throws {
        // The watch needs the file: make it if no enqueue has yet.
        SQLiteConnection.touch(path)
        inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else {
            // EMFILE, ENFILE, ENOMEM: limits that another moment may not meet.
            throw TransientFailure("inotify_init1 failed: \(String(cString: strerror(errno)))")
        }
        guard inotify_add_watch(inotify, path, UInt32(IN_ATTRIB | IN_CLOSE_WRITE)) >= 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            close(inotify)
            if TransientFailure.isTransient(errno: code) {
                // ENOSPC: the host's fs.inotify.max_user_watches is used up, for now.
                throw TransientFailure("cannot watch the wake file \(path): \(reason)")
            }
            throw ValidationFailure("cannot watch the wake file \(path): \(reason); check that its directory is writable")
        }
    }

    deinit { close(inotify) }

    var descriptor: Int32? { inotify }

    /// Nothing: an inotify event stays on the descriptor until it is read.
    func alreadyReceived(processID: Int) -> (claim: Bool, cancellations: Bool) { (false, false) }

    func read(processID: Int) -> (claim: Bool, cancellations: Bool) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var any = false
        while Glibc.read(inotify, &buffer, buffer.count) > 0 { any = true }
        return (any, any)
    }
}
