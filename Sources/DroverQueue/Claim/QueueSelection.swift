/// Which queues a worker takes jobs from, in order (docs/architecture.md).
///
/// Each entry is an exact queue name, a prefix pattern `mail*` (every queue whose name starts with
/// `mail`, in name order), or `*` (every queue). Jobs are taken from the first entry first; within
/// an entry, by priority (lower first), then by id. `*` orders all queues by priority and id.
public struct QueueSelection: Sendable, Equatable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public enum Pattern: Sendable, Equatable, CustomStringConvertible {
        case exact(String)
        case prefix(String)
        case all

        public var description: String {
            switch self {
            case .exact(let name): return name
            case .prefix(let prefix): return prefix + "*"
            case .all: return "*"
            }
        }
    }

    public let patterns: [Pattern]

    /// Parses `entries` such as `["critical", "default", "mail*"]`.
    public init(_ entries: [String]) throws(QueueError) {
        guard !entries.isEmpty else {
            throw QueueError(.invalidQueue, "the queue list is empty; name at least one queue, or \"*\" for all")
        }
        var patterns: [Pattern] = []
        for entry in entries {
            let pattern: Pattern
            if entry == "*" {
                pattern = .all
            } else if entry.contains("*") {
                let prefix = String(entry.dropLast())
                guard entry.hasSuffix("*"), !prefix.contains("*"), (try? JobRules.checkQueueName(prefix)) != nil else {
                    throw QueueError(
                        .invalidQueue,
                        "queue pattern \"\(entry)\" is not valid: use a queue name, a prefix followed by * (mail*), or *")
                }
                pattern = .prefix(prefix)
            } else {
                try JobRules.checkQueueName(entry, code: .invalidQueue)
                pattern = .exact(entry)
            }
            if !patterns.contains(pattern) { patterns.append(pattern) }
        }
        self.patterns = patterns
    }

    /// For literals in code; a literal that is not a valid selection is a programming error.
    public init(arrayLiteral elements: String...) {
        do {
            try self.init(elements)
        } catch {
            preconditionFailure(error.message)
        }
    }

    public var description: String { patterns.map(\.description).joined(separator: ", ") }
}
