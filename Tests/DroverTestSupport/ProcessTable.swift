import Foundation

/// What /proc says about processes.
public enum ProcessTable {
    public struct Entry: Sendable {
        public let pid: pid_t
        public let parent: pid_t
        /// R running, S sleeping, Z zombie, …
        public let state: Character
        public let command: String
    }

    public static func entry(_ pid: pid_t) -> Entry? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        let command = String(stat[stat.index(after: open)..<close])
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        return Entry(pid: pid, parent: parent, state: state, command: command)
    }

    /// Seconds of CPU (user and system, all threads) the process has used; 0 once it is gone.
    public static func cpuTime(_ pid: pid_t) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    public static func all() -> [Entry] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }.compactMap(entry)
    }

    /// The live (not zombie) children of `parent`.
    public static func children(of parent: pid_t) -> [Entry] {
        all().filter { $0.parent == parent && $0.state != "Z" }
    }

    /// Zombie children of `parent`: exited and not reaped.
    public static func zombies(of parent: pid_t) -> [Entry] {
        all().filter { $0.parent == parent && $0.state == "Z" }
    }

    /// The real user id `pid` runs as, from /proc/PID/status.
    public static func uid(_ pid: pid_t) -> uid_t? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
        else { return nil }
        return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { uid_t($0) }
    }

    /// True while `pid` exists and has not exited.
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let entry = entry(pid) else { return false }
        return entry.state != "Z" && entry.state != "X"
    }

    /// Where each open descriptor of `pid` points (`pipe:[123]`, `socket:[456]`, a path).
    public static func descriptors(_ pid: pid_t) -> [Int: String] {
        var result: [Int: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
            guard let fd = Int(name),
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(name)")
            else { continue }
            result[fd] = target
        }
        return result
    }
}
