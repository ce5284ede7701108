import DroverPersistence
import DroverQueue
import DroverTestSupport
import Foundation
import Testing

@Suite("drover recurring")
struct RecurringCommandTests {
    private func drover(_ arguments: [String], schema: String) throws -> DroverBinary.Outcome {
        try DroverBinary.run(arguments + ["--schema", schema], environment: ["DROVER_DATABASE_URL": try TestDatabase.url()])
    }

    @Test("add, list (table and JSON, with the next run and the last run's job) and remove")
    func addListRemove() throws {
        try TestDatabase.withSchema { schema, db in
            let store = try PostgresJobStore(schema: schema)
            try store.syncStaticTasks([RecurringTask(key: "from-config", schedule: "@daily", className: "Cleanup", isStatic: true)], on: db)
            let added = try drover([
                "recurring", "add", "report", "--class", "SendReport", "--schedule", "0 7 * * MON-FRI",
                "--time-zone", "Europe/Berlin", "--args", #"{"kind": "daily", "to": ["a", "b"]}"#, "--queue", "mail", "--catch-up",
            ], schema: schema)
            #expect(added.status == 0, "\(added)")
            #expect(added.stderr.contains("no scheduler is running yet"))
            let task = try #require(try store.tasks(on: db).first { $0.key == "report" })
            _ = try store.enqueueRun(of: task, at: Date(timeIntervalSince1970: 1_795_000_000), on: db)

            let listing = try drover(["recurring", "list", "--json"], schema: schema)
            #expect(listing.status == 0, "\(listing)")
            let entries = try #require(try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]])
            #expect(entries.map { $0["key"] as? String } == ["from-config", "report"])
            let report = entries[1]
            #expect(report["schedule"] as? String == "0 7 * * MON-FRI")
            #expect(report["time_zone"] as? String == "Europe/Berlin")
            #expect(report["class"] as? String == "SendReport" && report["queue"] as? String == "mail")
            #expect(report["catch_up"] as? Bool == true && report["static"] as? Bool == false)
            #expect((report["arguments"] as? [String: Any])?["to"] as? [String] == ["a", "b"])
            #expect(report["last_job_state"] as? String == "ready" && report["last_job_id"] as? Int != nil)
            let next = try #require(report["next_run_at"] as? String)
            let nextRun = try #require(ISO8601DateFormatter().date(from: next))
            #expect(nextRun > Date())
            #expect(entries[0]["static"] as? Bool == true)

            let table = try drover(["recurring", "list"], schema: schema)
            #expect(table.stdout.hasPrefix("TASK"))
            #expect(table.stdout.contains("report") && table.stdout.contains("added") && table.stdout.contains("config"))

            let refused = try drover(["recurring", "remove", "from-config"], schema: schema)
            #expect(refused.status == 65)
            #expect(refused.stderr.contains("recurring task from-config is defined in the configuration file"))
            let removed = try drover(["recurring", "remove", "report"], schema: schema)
            #expect(removed.status == 0 && removed.stdout == "Recurring task report is removed.\n")
            #expect(try store.tasks(on: db).map(\.key) == ["from-config"])
        }
    }

    @Test("a schedule or time zone that cannot be read, or a schedule that can never run, is bad usage, and says why")
    func badSchedules() throws {
        try TestDatabase.withSchema { schema, db in
            let schedule = try drover(["recurring", "add", "x", "--class", "C", "--schedule", "0 25 * * *"], schema: schema)
            #expect(schedule.status == 64)
            #expect(schedule.stderr.contains("schedule \"0 25 * * *\": hour 25 is out of range 0–23"))
            let zone = try drover(["recurring", "add", "x", "--class", "C", "--schedule", "@daily", "--time-zone", "Europe/Atlantis"], schema: schema)
            #expect(zone.status == 64)
            #expect(zone.stderr.contains("time zone \"Europe/Atlantis\" is not in the time zone database"))
            let never = try drover(["recurring", "add", "x", "--class", "C", "--schedule", "0 0 31 4,6 *"], schema: schema)
            #expect(never.status == 64)
            #expect(never.stderr.contains("schedule \"0 0 31 4,6 *\" can never run: April and June have no day 31"))
            #expect(try PostgresJobStore(schema: schema).tasks(on: db).isEmpty)
        }
    }
}
