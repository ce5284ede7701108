import ArgumentParser

/// Job ids as people type them: whole numbers from 1 up.
enum JobID {
    static func message(_ text: String) -> String {
        "job id \(text) is out of range: ids are whole numbers from 1 to \(Int.max)"
    }

    static func check(_ ids: [Int]) throws {
        if let bad = ids.first(where: { $0 < 1 }) { throw ValidationError(message(String(bad))) }
    }

    /// The commands that take job ids as arguments.
    static let commands: Set<[String]> = [["jobs", "show"], ["jobs", "cancel"], ["failed", "retry"], ["failed", "discard"]]

    /// A usage error for a negative id given to one of ``commands``, which the argument parser
    /// would read as an option ("Missing expected argument"); nil otherwise.
    static func negativeIDMessage(_ arguments: [String]) -> String? {
        guard arguments.count > 2, commands.contains(Array(arguments.prefix(2))) else { return nil }
        guard let negative = arguments.dropFirst(2).first(where: { $0.count > 1 && $0.hasPrefix("-") && Int($0) != nil })
        else { return nil }
        return message(negative)
    }
}
