import ArgumentParser

/// A first argument that names no command gets a suggestion instead of ArgumentParser's bare
/// "Unexpected argument".
enum UnknownCommand {
    /// The message for `word` as a command name, or nil when it is a command (or `help`).
    static func message(for word: String, in root: ParsableCommand.Type = DroverCommand.self) -> String? {
        let names = root.configuration.subcommands.filter { $0.configuration.shouldDisplay }.compactMap { $0.configuration.commandName }
        let hidden = root.configuration.subcommands.filter { !$0.configuration.shouldDisplay }.compactMap { $0.configuration.commandName }
        guard !names.contains(word), !hidden.contains(word), word != "help" else { return nil }
        let program = root.configuration.commandName ?? "drover"
        let close = names
            .map { (name: $0, distance: editDistance(word.lowercased(), $0)) }
            .filter { $0.distance <= max(2, word.count / 3) }
            .min { $0.distance < $1.distance }
        var message = "unknown command '\(word)'."
        if let close { message += " Did you mean '\(program) \(close.name)'?" }
        message += " The commands are: \(names.joined(separator: ", ")). See '\(program) --help'."
        return message
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
