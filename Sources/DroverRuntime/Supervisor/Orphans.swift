import CProcess
import Foundation

/// The supervisor is a child subreaper: a process its children leave behind (a job's command whose
/// worker was killed, or what that command started) becomes the supervisor's child instead of
/// init's. Such orphans are killed, with their process groups, and reaped, so that no job's
/// process outlives the worker that ran it.
enum Orphans {
    /// Makes this process the subreaper of its descendants.
    static func adopt() throws(SpawnError) {
        guard drover_become_subreaper() == 0 else { throw SpawnError(executable: "prctl(PR_SET_CHILD_SUBREAPER)", errno: errno) }
    }

    /// Kills every child of this process that is not in `known`, and its process group when it
    /// leads one of its own. Returns the pids killed.
    @discardableResult
    static func kill(except known: Set<pid_t>) -> [pid_t] {
        let me = getpid()
        let myGroup = getpgrp()
        var killed: [pid_t] = []
        for (pid, parent, group) in processes() where parent == me && !known.contains(pid) {
            if group == pid && group != myGroup { Glibc.kill(-group, SIGKILL) }
            Glibc.kill(pid, SIGKILL)
            killed.append(pid)
        }
        return killed
    }

    /// Every process as (pid, parent pid, process group), from /proc.
    private static func processes() -> [(pid_t, pid_t, pid_t)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { name -> (pid_t, pid_t, pid_t)? in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8) else { return nil }
            // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'.
            guard let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 3, let parent = pid_t(fields[1]), let group = pid_t(fields[2]) else { return nil }
            if fields[0] == "Z" { return nil }  // already dead, waiting to be reaped
            return (pid, parent, group)
        }
    }
}
