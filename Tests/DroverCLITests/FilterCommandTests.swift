import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

/// One filter language for `jobs list|cancel` and `failed list|retry|discard`, on both backends:
/// what each condition selects, --dry-run changing nothing, bulk changes in batches that say what
/// they did, and bad values refused at the edge (exit 64).
@Suite("Filters: the same conditions select jobs for every listing and bulk change")
struct FilterCommandTests {
    typealias Backend = HostileArgumentsTests.Backend
    typealias Target = HostileArgumentsTests.Target

    /// Six mail jobs ({"user": i, "tags": ["a", "b"]}), the first four failed (two "relay refused",
    /// two timeouts), and three sms jobs for user 1.
    static func scene(_ target: Target) throws -> (mail: [Int], sms: [Int]) {
        let admin = try target.admin()
        let mail = try admin.enqueue((0..<6).map { i in
            try NewJob("SendMail", arguments: JSON(validating: #"{"user": \#(i), "tags": ["a", "b"]}"#), queue: "mail")
        })
        let sms = try admin.enqueue((0..<3).map { _ in try NewJob("SendSMS", arguments: JSON(validating: #"{"user": 1}"#), queue: "sms") })
        try target.failJobs(Array(mail[0...1]), error: JobFailure(errorClass: "SMTPError", message: "relay refused"))
        try target.failJobs(Array(mail[2...3]), error: JobFailure(errorClass: "Timeout", message: "gave up after 30s"))
        return (mail, sms)
    }

    static func ids(_ outcome: DroverBinary.Outcome) throws -> [Int] {
        let jobs = try #require(try JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8)) as? [[String: Any]], "\(outcome)")
        return jobs.compactMap { $0["id"] as? Int }
    }

    @Test("listings: --args-contain, --error, --queue, --class, --state and time conditions, each alone and together",
          arguments: Backend.allCases)
    func listings(_ backend: Backend) throws {
        let target = try Target(backend)
        let (mail, sms) = try Self.scene(target)
        let list = { (arguments: [String]) in try Self.ids(try target.run(["jobs", "list", "--json"] + arguments)) }
        #expect(try list(["--args-contain", #"{"user": 1}"#]) == (sms + [mail[1]]).sorted(by: >))
        #expect(try list(["--args-contain", #"{"tags": ["b"]}"#]) == mail.reversed())
        #expect(try list(["--args-contain", #"{"user": 1}"#, "--queue", "sms"]) == sms.reversed())
        #expect(try list(["--args-contain", #"{"user": 1.0}"#, "--class", "SendSMS"]) == sms.reversed(), "numbers by value")
        #expect(try list(["--error", "relay"]) == [mail[1], mail[0]])
        #expect(try list(["--state", "ready", "--queue", "mail"]) == [mail[5], mail[4]])
        #expect(try list(["--newer-than", "1h"]).count == 9 && list(["--older-than", "1h"]).isEmpty)
        #expect(try list(["--newer-than", "2h", "--older-than", "1h"]).isEmpty)
        #expect(try Self.ids(try target.run(["failed", "list", "--json", "--error", "gave up"])) == [mail[3], mail[2]])
        #expect(try Self.ids(try target.run(["failed", "list", "--json", "--limit", "1"])) == [mail[3]])
    }

    @Test("failed retry|discard by filter: --dry-run counts and shows, changes nothing; the change runs in batches and says what it did",
          arguments: Backend.allCases)
    func failedByFilter(_ backend: Backend) throws {
        let target = try Target(backend)
        let (mail, _) = try Self.scene(target)
        let dry = try target.run(["failed", "retry", "--error", "relay", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.hasPrefix("would retry 2 jobs (error containing \"relay\"); the newest:"), "\(dry)")
        #expect(dry.stdout.contains("SMTPError: relay refused"))
        let dryJSON = try target.run(["failed", "retry", "--error", "relay", "--dry-run", "--json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(dryJSON.stdout.utf8)) as? [String: Any], "\(dryJSON)")
        #expect(report["count"] as? Int == 2 && (report["sample"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [mail[1], mail[0]])
        #expect(try target.admin().countJobs(JobFilter(state: .failed)) == 4, "a dry run changes nothing")

        let retried = try target.run(["failed", "retry", "--error", "relay", "--batch-size", "1"])
        #expect(retried.status == 0 && retried.stdout == "retried 2 jobs\n", "\(retried)")
        let admin = try target.admin()
        #expect(try admin.job(mail[0])?.state == .ready && admin.job(mail[1])?.state == .ready && admin.job(mail[2])?.state == .failed)
        let discarded = try target.run(["failed", "discard", "--class", "SendMail", "--json"])
        #expect(discarded.stdout == "{\"count\":2,\"skipped\":0}\n", "\(discarded)")
        #expect(try admin.job(mail[2]) == nil && admin.countJobs(JobFilter(state: .failed)) == 0)
        let none = try target.run(["failed", "retry", "--queue", "mail"])
        #expect(none.status == 0 && none.stdout == "retried 0 jobs\n", "matching nothing is not an error: \(none)")
    }

    @Test("jobs cancel by filter: waiting jobs deleted, finished and failed ones never selected; --dry-run first",
          arguments: Backend.allCases)
    func cancelByFilter(_ backend: Backend) throws {
        let target = try Target(backend)
        let (mail, sms) = try Self.scene(target)
        let dry = try target.run(["jobs", "cancel", "--args-contain", #"{"user": 1}"#, "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.hasPrefix("would cancel 3 jobs"), "the three sms jobs; the failed mail job is no candidate\n\(dry)")
        #expect(!dry.stdout.contains("SendMail"), "\(dry)")
        let cancelled = try target.run(["jobs", "cancel", "--args-contain", #"{"user": 1}"#])
        #expect(cancelled.status == 0 && cancelled.stdout == "cancelled 3 jobs\n", "\(cancelled)")
        let admin = try target.admin()
        #expect(try sms.allSatisfy { try admin.job($0) == nil } && admin.job(mail[1])?.state == .failed)
        let refused = try target.run(["jobs", "cancel", "--state", "failed"])
        #expect(refused.status == 64 && refused.stderr.contains("only ready, scheduled, blocked, waiting or claimed jobs can be cancelled"), "\(refused)")
    }

    @Test("bad values and combinations are exit 64 naming the option, before anything runs", arguments: [Backend.sqlite])
    func badValues(_ backend: Backend) throws {
        let target = try Target(backend)
        _ = try Self.scene(target)
        for (arguments, words) in [
            (["jobs", "list", "--args-contain", "42"], "--args-contain must be a JSON object or array"),
            (["jobs", "list", "--args-contain", "{"], "--args-contain is not valid JSON"),
            (["jobs", "list", "--older-than", "soon"], "--older-than \"soon\" is not a duration"),
            (["jobs", "list", "--newer-than", "1h", "--older-than", "2h"], "leave no time between them"),
            (["jobs", "list", "--queue", "a b"], "--queue \"a b\" is not a valid queue name"),
            (["jobs", "list", "--error", ""], "--error must be 1 to 200 characters"),
            (["failed", "retry", "--all", "--batch-size", "0"], "--batch-size 0 is not from 1 to 10000"),
            (["failed", "retry", "--all", "--queue", "mail"], "give job ids, --all or filters, only one of them"),
            (["failed", "retry", "3", "--dry-run"], "--dry-run goes with --all or filters"),
            (["jobs", "cancel"], "name the job by id, or select jobs with filters"),
            (["jobs", "cancel", "3", "--queue", "mail"], "give a job id or filters (or --all), not both"),
        ] {
            let outcome = try target.run(arguments)
            #expect(outcome.status == 64 && outcome.stderr.contains(words), "\(arguments): \(outcome)")
        }
        #expect(try target.admin().countJobs(JobFilter()) == 9, "nothing changed")
    }
}
