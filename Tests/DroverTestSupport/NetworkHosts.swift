import Foundation

/// Hosts of a test's own on this machine: each a network namespace joined to this one by a veth
/// pair with a /30 of its own (10.231.X.4i+1 on this side, .4i+2 inside), so that a `drover start`
/// run in it (``Host/exec``) reaches a PostgreSQL listening on this side's address over TCP, and the
/// test can cut that path (``partition(_:)``: packets dropped, no reset, as a dead path looks) and
/// mend it (``heal(_:)``). Needs root, `ip` (iproute2), `iptables` and `unshare`; `make chaos`
/// installs them.
///
/// Names carry the creating process's pid, so that namespaces left by a run that crashed are
/// recognised and removed (``removeStale()``, called by every new set), and two runs never collide.
/// Everything is removed in `deinit`, whether the test passed or not: the processes still in each
/// namespace are killed, then the namespace, which takes its veth pair with it.
public final class NetworkHosts {
    public struct Host: Sendable, CustomStringConvertible {
        /// The test's name for it ("A"), also its host name inside.
        public let name: String
        /// The network namespace.
        public let namespace: String
        /// This side's end of its veth pair: where a server for it listens.
        public let hostAddress: String
        /// Its own end, inside the namespace.
        public let address: String
        /// Its /30, for pg_hba.conf.
        public let network: String

        /// The start of an argv that runs a command inside the namespace, with a host name of its own
        /// (`hostname` says ``hostName``). `ip netns exec`, `unshare` and the shell each exec the next,
        /// so the command keeps the pid this argv's process started with.
        public var exec: [String] {
            [NetworkHosts.tool("ip"), "netns", "exec", namespace, NetworkHosts.tool("unshare"), "--uts", "/bin/sh", "-c",
             "hostname \"$0\" && exec \"$@\"", hostName]
        }

        /// What `hostname` says inside (and what Drover records as its processes' host).
        public var hostName: String { "chaos-\(name.lowercased())" }

        public var description: String { "host \(name) (\(namespace), \(address) to \(hostAddress))" }
    }

    public static let namespacePrefix = "drover-chaos-"

    public let hosts: [Host]
    private var partitioned: Set<String> = []

    /// Creates one host per name.
    public init(_ names: [String]) throws {
        guard getuid() == 0 else {
            throw DeadlineExceeded(description: "network namespaces need root; run make chaos as root")
        }
        for tool in ["ip", "iptables", "unshare"] where !FileManager.default.isExecutableFile(atPath: Self.tool(tool)) {
            throw DeadlineExceeded(description: "\(tool) is missing: apt-get install iproute2 iptables util-linux (make chaos installs them)")
        }
        Self.removeStale()
        let token = String(UInt32.random(in: 0 ... .max), radix: 36)
        let octet = try Self.freeOctet()
        var made: [Host] = []
        do {
            for (index, name) in names.enumerated() {
                let base = index * 4
                let host = Host(
                    name: name, namespace: "\(Self.namespacePrefix)\(getpid())-\(token)-\(index)",
                    hostAddress: "10.231.\(octet).\(base + 1)", address: "10.231.\(octet).\(base + 2)",
                    network: "10.231.\(octet).\(base)/30")
                let outside = "dvc\(token.prefix(6))h\(index)"
                try Self.run(Self.tool("ip"), ["netns", "add", host.namespace])
                made.append(host)
                try Self.run(Self.tool("ip"), ["link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.namespace])
                try Self.run(Self.tool("ip"), ["addr", "add", host.hostAddress + "/30", "dev", outside])
                try Self.run(Self.tool("ip"), ["link", "set", outside, "up"])
                try Self.run(Self.tool("ip"), ["-n", host.namespace, "addr", "add", host.address + "/30", "dev", "eth0"])
                try Self.run(Self.tool("ip"), ["-n", host.namespace, "link", "set", "eth0", "up"])
                try Self.run(Self.tool("ip"), ["-n", host.namespace, "link", "set", "lo", "up"])
            }
        } catch {
            for host in made { Self.remove(namespace: host.namespace) }
            throw error
        }
        hosts = made
        // The address on this side answers once its link is up (IPv4 needs no duplicate detection).
        try waitUntil("the veth pairs are up", timeout: .seconds(10)) {
            hosts.allSatisfy { host in
                (try? Self.output(Self.tool("ip"), ["-n", host.namespace, "-o", "link", "show", "eth0"]))?.contains("LOWER_UP") ?? false
            }
        }
    }

    deinit {
        for host in hosts { Self.remove(namespace: host.namespace) }
    }

    public subscript(name: String) -> Host { hosts.first { $0.name == name }! }

    /// Drops every packet between `host` and this side (both ways, no reset): from inside, its
    /// connections simply stop answering.
    public func partition(_ host: Host) throws {
        try iptables(host, "-I")
        partitioned.insert(host.namespace)
    }

    /// Removes what ``partition(_:)`` added.
    public func heal(_ host: Host) throws {
        try iptables(host, "-D")
        partitioned.remove(host.namespace)
    }

    public func isPartitioned(_ host: Host) -> Bool { partitioned.contains(host.namespace) }

    private func iptables(_ host: Host, _ action: String) throws {
        let inside = [Self.tool("ip"), "netns", "exec", host.namespace, Self.tool("iptables"), "-w", action]
        try Self.run(inside[0], Array(inside.dropFirst()) + ["OUTPUT", "-d", host.hostAddress, "-j", "DROP"])
        try Self.run(inside[0], Array(inside.dropFirst()) + ["INPUT", "-s", host.hostAddress, "-j", "DROP"])
    }

    /// The processes inside `host`'s namespace.
    public func pids(in host: Host) -> [pid_t] {
        Self.pids(inNamespace: host.namespace)
    }

    /// Namespaces this class made in processes that are gone (a run that crashed), and what runs in
    /// them.
    public static func removeStale() {
        guard let list = try? output(tool("ip"), ["netns", "list"]) else { return }
        for line in list.split(separator: "\n") {
            let name = String(line.split(separator: " ")[0])
            guard name.hasPrefix(namespacePrefix),
                  let owner = pid_t(name.dropFirst(namespacePrefix.count).split(separator: "-").first ?? "") else { continue }
            if kill(owner, 0) != 0 && errno == ESRCH { remove(namespace: name) }
        }
    }

    private static func remove(namespace: String) {
        // A namespace lives on while a process is in it, and its veth pair with it.
        for _ in 0..<3 {
            let inside = pids(inNamespace: namespace)
            if inside.isEmpty { break }
            for pid in inside { kill(pid, SIGKILL) }
            for pid in inside {
                let deadline = ContinuousClock.now + .seconds(5)
                while ProcessTable.isAlive(pid) && ContinuousClock.now < deadline { usleep(10_000) }
            }
        }
        _ = try? run(tool("ip"), ["netns", "del", namespace])
    }

    private static func pids(inNamespace namespace: String) -> [pid_t] {
        ((try? output(tool("ip"), ["netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    /// A third octet of 10.231.0.0/16 that no address of this host uses.
    private static func freeOctet() throws -> Int {
        let addresses = try output(tool("ip"), ["-o", "-4", "addr", "show"])
        for _ in 0..<50 {
            let octet = Int.random(in: 1...254)
            if !addresses.contains("10.231.\(octet).") { return octet }
        }
        throw DeadlineExceeded(description: "no free 10.231.X.0/24 for test hosts")
    }

    /// Where a tool lives (sbin is not always on a test's PATH).
    static func tool(_ name: String) -> String {
        for directory in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/sbin/\(name)"
    }

    /// Runs a command to completion; throws with its output when it fails.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let outcome = try RunningProcess(executable: executable, arguments: arguments, environment: ProcessInfo.processInfo.environment)
            .wait(timeout: .seconds(30))
        guard outcome.status == 0 else {
            throw DeadlineExceeded(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(outcome)")
        }
        return outcome.stdout
    }

    static func output(_ executable: String, _ arguments: [String]) throws -> String { try run(executable, arguments) }
}
