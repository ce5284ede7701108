@testable import DroverRuntime
import Foundation
import Testing

/// man/drover.yml.5 keeps up with the configuration it documents.
@Suite("The drover.yml(5) manual page")
struct ManualPageTests {
    static let page: String = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("man/drover.yml.5").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }()

    @Test("it documents every key of a handler")
    func handlerKeys() {
        #expect(!Self.page.isEmpty, "man/drover.yml.5 is missing")
        for key in ConfigReader.handlerKeys {
            #expect(Self.page.contains(".It Cm \(key)\n"), "handlers.\(key) is not documented")
        }
    }

    /// The text of the item documenting `key` in the section whose heading is `section`.
    static func item(_ key: String, in section: String) -> String? {
        guard let start = page.range(of: ".Ss \(section)\n") else { return nil }
        let rest = page[start.upperBound...]
        let end = rest.range(of: "\n.Ss ")?.lowerBound ?? rest.endIndex
        let body = rest[..<end]
        guard let item = body.range(of: ".It Cm \(key)\n") else { return nil }
        let after = body[item.upperBound...]
        return String(after[..<(after.range(of: "\n.It ")?.lowerBound ?? after.endIndex)])
    }

    @Test("every key of every section is documented with its default")
    func everyKeyWithDefault() {
        var keys = ConfigReader.sectionKeys.flatMap { section, keys in keys.map { (section, $0) } }
        keys += ConfigReader.handlerKeys.map { ("handlers", $0) } + ConfigReader.recurringKeys.map { ("recurring", $0) }
        keys += ConfigReader.concurrencyKeys.map { ("handlers", $0) }
        keys += ConfigReader.retryKeys.map { ("handlers", $0) }
        keys += ConfigReader.rateLimitKeys.map { ("handlers", $0) }
        keys += ConfigReader.webKeys.map { ("web", $0) }
        for (section, key) in keys {
            let text = Self.item(key, in: section)
            #expect(text != nil, "\(section).\(key) is not documented in drover.yml(5)")
            #expect(text?.contains("default") == true, "\(section).\(key) has no default in drover.yml(5): \(text ?? "")")
        }
    }

    @Test("it documents both ways of giving the dashboard's password")
    func webAuthKeys() {
        for key in ConfigReader.webAuthKeys {
            #expect(Self.item(key, in: "web") != nil, "web.auth.\(key) is not documented")
        }
    }

    @Test("it documents every key of a concurrency limit")
    func concurrencyKeys() {
        for key in ConfigReader.concurrencyKeys {
            #expect(Self.page.contains(".It Cm \(key)\n"), "handlers.*.concurrency.\(key) is not documented")
        }
    }

    @Test("it documents every key of a recurring task")
    func recurringKeys() {
        for key in ConfigReader.recurringKeys {
            #expect(Self.page.contains("Cm \(key)"), "recurring.\(key) is not documented")
        }
    }

    @Test("it documents what a command's exit status does, 100 included")
    func exitStatuses() {
        #expect(Self.page.contains(".It 0\nThe job is finished, with its result if it wrote one."))
        #expect(Self.page.contains(".It 100\nA permanent failure: the job fails at once and is not retried."))
        for variable in ["DROVER_JOB_ID", "DROVER_QUEUE", "DROVER_ATTEMPT", "DROVER_JOB_CLASS", "DROVER_RESULT_FD", "DROVER_BATCH_ID"] {
            #expect(Self.page.contains(".Ev \(variable)"))
        }
    }

    @Test("drover(1) documents every exit status of the one contract, and nothing else")
    func exitStatusContract() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../man/drover.1").standardized.path
        let page = try String(contentsOfFile: path, encoding: .utf8)
        let section = try #require(page.components(separatedBy: ".Sh EXIT STATUS").last?.components(separatedBy: ".Sh SEE ALSO").first)
        let documented = Set(section.split(separator: "\n").filter { $0.hasPrefix(".It ") }.compactMap { Int32($0.dropFirst(4)) })
        #expect(documented == Set(ExitStatus.allCases.map(\.rawValue)))
    }
}
