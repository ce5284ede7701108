import CProcess
import Foundation

/// A PostgreSQL cluster of a test's own, in a temporary directory, which the test may stop and start
/// (the shared test server cannot be stopped under the other tests). As root it runs as `postgres`.
public final class PrivateCluster {
    public let directory: String
    public let url: String
    private let bindir: String
    private let asPostgres: Bool
    /// Addresses it also listens on over TCP (port 5432), besides its socket.
    public let tcpAddresses: [String]

    /// With `tcpAddresses` (such as ``NetworkHosts/Host/hostAddress``), it listens there too and
    /// trusts connections from `trusting` (networks, such as ``NetworkHosts/Host/network``).
    public init(listeningOn tcpAddresses: [String] = [], trusting networks: [String] = []) throws {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .sorted(by: { $0.compare($1, options: .numeric) == .orderedDescending })
        let candidates = versions.map { "/usr/lib/postgresql/\($0)/bin" }
        guard let bindir = candidates.first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }) else {
            throw DeadlineExceeded(description: "this test starts a PostgreSQL of its own and needs its server binaries (apt-get install postgresql); make test installs them")
        }
        self.bindir = bindir
        self.tcpAddresses = tcpAddresses
        asPostgres = getuid() == 0
        directory = "/tmp/drover-pc-" + String(UInt32.random(in: 0 ... .max), radix: 36)
        url = "postgresql:///drover_test?host=\(directory)/s&port=5432"
        try FileManager.default.createDirectory(atPath: directory + "/s", withIntermediateDirectories: true)
        if asPostgres { try Self.run("/bin/chown", ["-R", "postgres:postgres", directory]) }
        try command("initdb", ["-D", directory + "/data", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        if !networks.isEmpty, let hba = FileHandle(forWritingAtPath: directory + "/data/pg_hba.conf") {
            hba.seekToEndOfFile()
            hba.write(Data(networks.map { "host all all \($0) trust\n" }.joined().utf8))
            hba.closeFile()
        }
        try start()
        let psql = ["-h", directory + "/s", "-p", "5432", "-d", "postgres", "-qAt", "-v", "ON_ERROR_STOP=1", "-c"]
        if asPostgres {
            try command("psql", psql + ["CREATE ROLE \"\(NSUserName())\" SUPERUSER LOGIN"])
        }
        try Self.run(bindir + "/psql", psql + ["CREATE DATABASE drover_test"])
    }

    deinit {
        _ = try? command("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The URL of the database over TCP at one of ``tcpAddresses``.
    public func url(overTCP address: String) -> String { "postgresql://\(NSUserName())@\(address):5432/drover_test" }

    /// Starts the server (again).
    public func start() throws {
        try command("pg_ctl", ["-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
                               "-o", "-k \(directory)/s -p 5432 -c listen_addresses='\(tcpAddresses.joined(separator: ","))' -c fsync=off",
                               "start"])
    }

    /// Stops the server as an operator's `pg_ctl stop` would: fast, ending every session.
    public func stop() throws {
        try command("pg_ctl", ["-D", directory + "/data", "-m", "fast", "-w", "stop"])
    }

    private func command(_ tool: String, _ arguments: [String]) throws {
        if asPostgres {
            try Self.run("/sbin/runuser", ["-u", "postgres", "--", bindir + "/" + tool] + arguments)
        } else {
            try Self.run(bindir + "/" + tool, arguments)
        }
    }

    /// Runs a command to completion through Drover's spawn shim, not Foundation's Process: the shim
    /// closes every descriptor above stdio, while Process hands its child a socket by which it
    /// notices the exit, and a daemon (the postmaster pg_ctl starts) would keep that open forever.
    private static func run(_ executable: String, _ arguments: [String]) throws {
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let error = drover_spawn(executable, argv, envp, nil, 0, &pid)
        guard error == 0 else {
            throw DeadlineExceeded(description: "cannot run \(executable): \(String(cString: strerror(error)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else {
            throw DeadlineExceeded(description: "\(executable) \(arguments.joined(separator: " ")) failed (wait status \(status)); see its output above")
        }
    }
}
