import Drover
import Foundation
import Tracing

// First thing, in every process (the workers run main again): the app's instrument.
InstrumentationSystem.bootstrap(RequestIDInstrument())

// `signup register EMAIL [--rollback]` is the app's own work: it adds a user and enqueues the
// welcome email in the same transaction, so that the email goes out if and only if the user exists.
// Every other command is Drover's: `signup start`, `signup jobs list`, `signup migrate`, …
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "register" {
    do {
        try register(arguments: Array(arguments.dropFirst()))
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("signup: \(error)\n".utf8))
        exit(1)
    }
}
// Drover's own log format (logfmt, or journald under systemd) unless SIGNUP_LOG=json asks for the
// app's: every process of `signup start` runs this line again, and logs the same way.
var logHandler: (@Sendable (String) -> any LogHandler)?
if ProcessInfo.processInfo.environment["SIGNUP_LOG"] == "json" {
    logHandler = { label in JSONLogHandler(label: label) }
}
// Each worker process builds one Mailer when it starts; its jobs share it, and it is shut down
// when the worker stops.
Drover.main(jobs: [SendWelcomeEmail.self, GenerateReport.self, ReportFailed.self], services: { try await Mailer() }, logHandler: logHandler)

struct RolledBack: Error, CustomStringConvertible {
    var description: String { "rolled back, as asked: no user, no email" }
}

func register(arguments: [String]) throws {
    guard let address = arguments.first else {
        throw ValidationFailure("usage: signup register EMAIL [--rollback] [--schema NAME] [--request-id ID]")
    }
    // As a web handler would: the request's id is the current context's, and the job carries it.
    var context = ServiceContext.topLevel
    context.requestID = arguments.firstIndex(of: "--request-id").map { arguments[$0 + 1] }
    try ServiceContext.withValue(context) { try register(address: address, arguments: arguments) }
}

func register(address: String, arguments: [String]) throws {
    let rollback = arguments.contains("--rollback")
    let schema = arguments.firstIndex(of: "--schema").map { arguments[$0 + 1] } ?? "drover"
    let url = ProcessInfo.processInfo.environment["DROVER_DATABASE_URL"] ?? ""
    let db = try Connection(url, applicationName: "signup")
    let users = SQLIdentifier(schema, "signup_users")
    try db.execute("CREATE TABLE IF NOT EXISTS \(users) (id bigserial PRIMARY KEY, address text NOT NULL)")
    do {
        try db.withTransaction { tx in
            let id = try tx.query("INSERT INTO \(users) (address) VALUES (\(address)) RETURNING id")[0].decode("id", as: Int.self)
            let job = try tx.enqueue(SendWelcomeEmail(userID: id, address: address), schema: schema)
            print("user \(id), job \(job)")
            if rollback { throw RolledBack() }
        }
    } catch let error as RolledBack {
        print(error)
    }
}

struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
