import DroverPersistence
import Foundation
import Yams

/// Finds, reads and validates the configuration file.
public enum ConfigurationLoader {
    public static let defaultPath = "/etc/drover/drover.yml"
    public static let environmentVariable = "DROVER_CONFIG"

    /// The top-level sections (drover.yml(5) documents each).
    static let sections = ["database", "workers", "dispatchers", "handlers", "recurring", "supervisor", "retention", "web", "on_failure"]

    /// Which file to read: `explicitPath` (`--config`), then `$DROVER_CONFIG`, then the default path.
    /// Returns nil when neither was given and the default file does not exist: Drover then runs on
    /// defaults. A file that was asked for by name must exist.
    public static func load(
        explicitPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigurationError) -> Configuration? {
        if let path = explicitPath ?? environment[environmentVariable].flatMap({ $0.isEmpty ? nil : $0 }) {
            return try load(path: path)
        }
        guard FileManager.default.fileExists(atPath: defaultPath) else { return nil }
        return try load(path: defaultPath)
    }

    /// Reads and validates the file at `path`.
    public static func load(path: String) throws(ConfigurationError) -> Configuration {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            throw ConfigurationError(
                path: path,
                message: "cannot read the configuration file: \(reason); create it, or point --config or "
                    + "\(environmentVariable) at the right file")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ConfigurationError(path: path, message: "is not a regular file; point --config at a YAML file")
        }
        // Handlers name commands to run (as root, with user:): whoever can write the file can run anything.
        if let problem = FileGuard.problem(mode: info.st_mode, owner: info.st_uid, runningAs: geteuid(), path: path) {
            throw ConfigurationError(path: path, message: problem)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(
                path: path, message: "cannot read the configuration file: \(String(cString: strerror(errno)))")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(path: path, message: "is not UTF-8 text; save it as UTF-8")
        }
        return try parse(text, path: path)
    }

    /// Validates `text` as the contents of the file at `path` (used for messages only).
    public static func parse(_ text: String, path: String) throws(ConfigurationError) -> Configuration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(path: path, line: Self.line(of: error), message: "is not valid YAML: \(Self.reason(error))")
        } catch {
            throw ConfigurationError(path: path, message: "is not valid YAML: \(error)")
        }
        var configuration = Configuration(path: path)
        let reader = ConfigReader(path: path)
        guard let root, !reader.isNull(root) else { return configuration }
        for entry in try reader.mapping(root, nil, allowed: sections) where !reader.isNull(entry.value) {
            switch entry.key {
            case "database": configuration.database = try reader.database(entry.value)
            case "workers": configuration.workers = try reader.workers(entry.value)
            case "dispatchers": configuration.dispatchers = try reader.dispatchers(entry.value)
            case "handlers": configuration.handlers = try reader.handlers(entry.value)
            case "recurring": configuration.recurring = try reader.recurring(entry.value)
            case "supervisor": configuration.supervisor = try reader.supervisor(entry.value)
            case "web": configuration.web = try reader.web(entry.value)
            case "on_failure": configuration.onFailure = try reader.onFailure(entry.value, "on_failure")
            default: configuration.retention = try reader.retention(entry.value)
            }
        }
        return configuration
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        case .duplicatedKeysInMapping(_, let context):
            return context.mark.line
        default:
            return nil
        }
    }

    private static func reason(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
             .composer(let context, let problem, _, _):
            guard let context else { return problem }
            return "\(problem) \(context.text) that starts on line \(context.mark.line)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "the key \(duplicates.joined(separator: ", ")) appears twice in one mapping; keep one"
        case .reader(let problem, _, _, _):
            return problem
        default:
            return "\(error)"
        }
    }
}

/// Who may write the configuration file: it decides which commands run, as root when a handler
/// says `user:`. Only root and the user running Drover may own it, and neither its group nor
/// others may write it.
public enum FileGuard {
    /// Why the file with `mode` and `owner` must be refused when Drover runs as `runningAs`, with
    /// the command that fixes it; nil when it may be read.
    public static func problem(
        mode: mode_t, owner: uid_t, runningAs: uid_t, path: String, name: (uid_t) -> String? = FileGuard.userName
    ) -> String? {
        func who(_ uid: uid_t) -> String { name(uid).map { "\($0) (uid \(uid))" } ?? "uid \(uid)" }
        let octal = "mode " + String(mode & 0o7777, radix: 8).leftPadded(to: 4)
        let because = "it decides which commands Drover runs, so Drover refuses it"
        if owner != 0 && owner != runningAs {
            let fix = runningAs == 0 ? "chown root \(path)" : "chown root \(path) (or chown \(name(runningAs) ?? String(runningAs)) \(path))"
            let allowed = runningAs == 0 ? "root" : "root or \(who(runningAs)), the user running Drover"
            return "is owned by \(who(owner)), not by \(allowed); \(because); run: \(fix)"
        }
        let byGroup = mode & S_IWGRP != 0
        let byOthers = mode & S_IWOTH != 0
        guard byGroup || byOthers else { return nil }
        let writers = byGroup && byOthers ? "its group and by other users" : byGroup ? "its group" : "other users"
        return "is writable by \(writers) (\(octal)); \(because); run: chmod go-w \(path)"
    }

    /// The name of user `uid` in the password database.
    public static func userName(_ uid: uid_t) -> String? {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
