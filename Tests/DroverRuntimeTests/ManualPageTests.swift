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
        #expect(Self.page.contains(".It 0\nThe job is finished."))
        #expect(Self.page.contains(".It 100\nA permanent failure: the job fails at once and is not retried."))
        for variable in ["DROVER_JOB_ID", "DROVER_QUEUE", "DROVER_ATTEMPT", "DROVER_JOB_CLASS"] {
            #expect(Self.page.contains(".Ev \(variable)"))
        }
    }
}
