import Drover
import Foundation

// Examples/Posts: a Hummingbird app that keeps its posts in PostgreSQL through postgres-nio and
// publishes each new post with a Drover job, enqueued in the transaction that creates the post.
//
//   posts-example serve --listen 127.0.0.1:8080 [--schema drover]   the HTTP API (PostsServer.swift)
//   posts-example start --config drover.yml                         Drover's workers, running PublishPost
//   posts-example migrate | jobs list | …                           every other drover command
//
// POSTS_DATABASE_URL names the app's database (the server, and the workers' services), POSTS_SCHEMA
// the schema of its table; Drover's commands take theirs as usual (DROVER_DATABASE_URL, --config).
// Here both are one database: Drover's jobs must be in the database of the app's transactions.
let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "serve" {
    func option(_ name: String) -> String? {
        arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
    }
    let listen = option("--listen") ?? "127.0.0.1:8080"
    guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) else {
        FileHandle.standardError.write(Data("posts-example: --listen takes HOST:PORT, such as 127.0.0.1:8080\n".utf8))
        exit(64)
    }
    let server = PostsServer(
        host: String(listen[..<colon]), port: port, droverSchema: option("--schema") ?? "drover",
        environment: ProcessInfo.processInfo.environment)
    Task {
        do {
            try await server.run()
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("posts-example: \(error)\n".utf8))
            exit(1)
        }
    }
    dispatchMain()
}

// Each worker process builds the app's services (its PostgreSQL client) once, when it starts.
Drover.main(jobs: [PublishPost.self], services: { try PostsServices() })
