import ArgumentParser
import DroverPersistence
import DroverQueue
import DroverRuntime
import Foundation

/// Runs a command's body; prints any error as `drover: error: …` with what to do, and exits with
/// the documented status for it. `location` says where the database URL came from, for the message.
func reportingErrors<R>(location: DatabaseLocation? = nil, _ body: () throws -> R) throws -> R {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        let (status, message) = describe(error, location: location)
        FileHandle.standardError.write(Data("drover: error: \(message)\n".utf8))
        throw ExitCode(status.rawValue)
    }
}

private func describe(_ error: Error, location: DatabaseLocation?) -> (ExitStatus, String) {
    switch error {
    case let error as ConfigurationError:
        return (.config, error.description)
    case let error as QueueError:
        switch error.code {
        case .invalidJob, .invalidQueue: return (.usage, error.message)
        default: return (.dataError, error.message)
        }
    case let error as DatabaseError:
        let origin = location.map { " (the database came from \($0.source))" } ?? ""
        switch error.code {
        case .connectionFailed, .authenticationFailed, .databaseNotFound, .connectionLost:
            return (.unavailable, error.description + origin)
        case .invalidConnectionString:
            let status: ExitStatus = location?.source == .commandLine ? .usage : .config
            return (status, error.description + origin)
        case _ where ["42P01", "42883", "3F000"].contains(error.sqlState ?? ""):
            // Undefined table, function or schema: the schema was never migrated (or is behind).
            let schema = location.map { "schema \"\($0.schema)\"" } ?? "the schema"
            return (.unavailable, "\(schema) does not have Drover's tables, or not all of them (\(error.message)); "
                + "run: drover migrate" + origin)
        default:
            return (.software, error.description)
        }
    default:
        return (.software, "\(error)")
    }
}
