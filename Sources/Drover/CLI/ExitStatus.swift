import ArgumentParser
import DroverPersistence
import DroverRuntime
import Foundation

/// The exit statuses `drover` documents (sysexits.h values).
enum ExitStatus: Int32 {
    case ok = 0
    case usage = 64
    case dataError = 65
    case unavailable = 69
    case software = 70
    case config = 78
}

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
    case let error as DatabaseError:
        let origin = location.map { " (the database came from \($0.source))" } ?? ""
        switch error.code {
        case .connectionFailed, .authenticationFailed, .databaseNotFound, .connectionLost:
            return (.unavailable, error.description + origin)
        case .invalidConnectionString:
            let status: ExitStatus = location?.source == .commandLine ? .usage : .config
            return (status, error.description + origin)
        default:
            return (.software, error.description)
        }
    default:
        return (.software, "\(error)")
    }
}
