import DroverQueue
import Foundation

/// A `handlers:` entry as a worker runs it: the command's argv, the environment it starts from,
/// and the user it runs as, resolved once when the worker starts.
struct CommandHandler: Sendable {
    struct Credentials: Sendable {
        let name: String
        let uid: uid_t
        let gid: gid_t
        let groups: [gid_t]
        let home: String
    }

    let className: String
    let command: [String]
    let timeout: Duration?
    let gracePeriod: Duration
    let maxAttempts: Int?
    let retryPolicy: RetryPolicy?
    let maxSnoozes: Int
    let workingDirectory: String?
    let credentials: Credentials?
    /// The command's environment before the job's own variables: a few harmless variables of the
    /// worker's (never the database URL, PG*, or anything else secret), then the handler's `env`.
    let environment: [String: String]

    /// What a command inherits from its worker's environment.
    static let inheritedVariables: Set<String> = ["PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME"]
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    struct UserError: Error, CustomStringConvertible {
        let description: String
        /// The lookup failed rather than found no such user: trying again later may work.
        var transient = false
    }

    init(className: String, part: ChildSpec.HandlerPart, workerEnvironment: [String: String]) throws(UserError) {
        self.className = className
        command = part.command
        timeout = part.timeoutMilliseconds.map(Duration.init(milliseconds:))
        gracePeriod = Duration(milliseconds: part.gracePeriodMilliseconds)
        maxAttempts = part.maxAttempts
        retryPolicy = part.retry
        maxSnoozes = part.maxSnoozes
        workingDirectory = part.workingDirectory
        credentials = try part.user.map { name throws(UserError) in try Self.credentials(of: name, handler: className) }

        var environment = workerEnvironment.filter { Self.inheritedVariables.contains($0.key) || $0.key.hasPrefix("LC_") }
        if environment["PATH"] == nil { environment["PATH"] = Self.defaultPath }
        if let credentials {
            environment["HOME"] = credentials.home
            environment["USER"] = credentials.name
            environment["LOGNAME"] = credentials.name
        }
        environment.merge(part.environment) { _, handlers in handlers }
        self.environment = environment
    }

    /// The environment of one attempt: the job's variables last, so that `env` cannot hide them.
    func environment(for job: ClaimedJob) -> [String: String] {
        var environment = self.environment
        environment["DROVER_JOB_ID"] = String(job.id)
        environment["DROVER_QUEUE"] = job.queue
        environment["DROVER_ATTEMPT"] = String(job.attempt)
        environment["DROVER_JOB_CLASS"] = job.className
        // Where the command may write its result (a JSON document, at most 64 KiB).
        environment["DROVER_RESULT_FD"] = "3"
        if let batch = job.batchID { environment["DROVER_BATCH_ID"] = String(batch) }
        return environment
    }

    /// The program to exec: as given when it holds a `/`, else the first executable of that name
    /// in the command's PATH.
    func program() -> String? {
        Self.locate(command[0], path: environment["PATH"] ?? Self.defaultPath)
    }

    /// `name` when it holds a `/`, else the first executable file of that name in `path`.
    static func locate(_ name: String, path: String) -> String? {
        if name.contains("/") { return name }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }

    /// Looks `name` up in the user database: its uid, primary group, supplementary groups and home.
    static func credentials(of name: String, handler: String) throws(UserError) -> Credentials {
        errno = 0
        guard let entry = getpwnam(name) else {
            // getpwnam sets errno only when the lookup itself failed (an NSS service that did not
            // answer, a descriptor limit): the user may well exist.
            if errno != 0 && ![ENOENT, ESRCH, EBADF, EPERM].contains(errno) {
                throw UserError(description: "handlers.\(handler).user: looking up \"\(name)\" failed: \(String(cString: strerror(errno)))",
                                transient: true)
            }
            throw UserError(description: "handlers.\(handler).user: no user named \"\(name)\" on this host")
        }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        let home = String(cString: entry.pointee.pw_dir)
        var count: Int32 = 32
        var groups = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
        }
        let switching = uid != geteuid()
        if switching && geteuid() != 0 {
            throw UserError(description: "handlers.\(handler).user: running commands as \"\(name)\" needs the supervisor to run as root "
                + "(it runs as uid \(geteuid())); remove user: or start drover as root")
        }
        return Credentials(name: name, uid: uid, gid: gid, groups: Array(groups.prefix(Int(count))), home: home)
    }
}

extension Configuration {
    /// Handlers whose program cannot be found or run here, one line each, for `drover check`: not
    /// errors, since a deployment may install the program after the configuration.
    public func handlerWarnings(environment: [String: String]) -> [String] {
        handlers.sorted { $0.key < $1.key }.compactMap { name, handler in
            let program = handler.command[0]
            let path = handler.environment["PATH"] ?? environment["PATH"] ?? CommandHandler.defaultPath
            guard let found = CommandHandler.locate(program, path: path) else {
                return "handlers.\(name).command: \(program) is not in PATH (\(path)); its jobs will fail until it is installed"
            }
            let resolved = found.hasPrefix("/") || handler.workingDirectory == nil ? found : "\(handler.workingDirectory!)/\(found)"
            guard CommandHandler.isExecutableFile(resolved) else {
                return "handlers.\(name).command: \(resolved) is not an executable file; its jobs will fail until it is"
            }
            return nil
        }
    }
}
