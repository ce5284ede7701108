import Drover
import DroverPostgresNIO
import Foundation
import Hummingbird
import Logging
import PostgresNIO

/// `posts-example serve --listen HOST:PORT`: the app's HTTP API, with one PostgreSQL client
/// (postgres-nio) that Hummingbird runs as a service.
///
/// - `POST /posts` with `{"title": "…"}` creates the post and enqueues ``PublishPost`` in one
///   transaction: 201 `{"post": ID, "job": ID}`; a title that exists already is 409, and leaves
///   neither a post nor a job (the job was enqueued before the insert failed: both roll back).
/// - `GET /posts/ID`: `{"id", "title", "job", "published"}`, 404 if there is none.
struct PostsServer {
    let host: String
    let port: Int
    let droverSchema: String
    let environment: [String: String]

    struct NewPost: Decodable { var title: String }
    struct Created: ResponseEncodable { var post: Int; var job: Int }
    struct PostView: ResponseEncodable { var id: Int; var title: String; var job: Int; var published: Bool }

    func run() async throws {
        let logger = Logger(label: "posts")
        let client = PostgresClient(configuration: try PostsDatabase.configuration(environment: environment), backgroundLogger: logger)
        let posts = try PostsDatabase.postsTable(environment: environment)
        let schema = droverSchema

        let router = Router(context: BasicRequestContext.self)
        router.post("posts") { request, context -> EditedResponse<Created> in
            let title = try await request.decode(as: NewPost.self, context: context).title
            guard (1...200).contains(title.count), !title.unicodeScalars.contains("\0") else {
                throw HTTPError(.badRequest, message: "title must be 1 to 200 characters, without NUL")
            }
            do {
                let created = try await client.withTransaction(logger: logger) { connection in
                    // The post's id first, so that its job can name it; the job is enqueued before
                    // the post is inserted: a duplicate title, refused by the insert, rolls back both.
                    var postID = 0
                    for try await id in try await connection.query("SELECT nextval(pg_get_serial_sequence(\(posts), 'id'))", logger: logger)
                        .decode(Int.self) { postID = id }
                    let jobID = try await connection.enqueue(PublishPost(postID: postID), schema: schema, logger: logger)
                    try await connection.query(
                        "INSERT INTO \(unescaped: posts) (id, title, job_id) VALUES (\(postID), \(title), \(jobID))", logger: logger)
                    return Created(post: postID, job: jobID)
                }
                return EditedResponse(status: .created, response: created)
            } catch let error as PostgresTransactionError {
                if let psql = error.closureError as? PSQLError, psql.serverInfo?[.sqlState] == "23505" {
                    throw HTTPError(.conflict, message: "a post with this title exists")
                }
                logger.error("cannot create the post", metadata: ["error": "\(error.closureError ?? error.commitError ?? error.beginError ?? error)"])
                throw HTTPError(.internalServerError, message: "the post could not be created")
            }
        }
        router.get("posts/:id") { _, context -> PostView in
            let id = try context.parameters.require("id", as: Int.self)
            let rows = try await client.query(
                "SELECT id, title, job_id, published_at IS NOT NULL FROM \(unescaped: posts) WHERE id = \(id)", logger: logger)
            for try await (id, title, job, published) in rows.decode((Int, String, Int, Bool).self) {
                return PostView(id: id, title: title, job: job, published: published)
            }
            throw HTTPError(.notFound, message: "no post \(id)")
        }

        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                // The port the server got (0 asks for a free one): how a test finds it.
                FileHandle.standardOutput.write(Data("listening on http://\(host):\(channel.localAddress?.port ?? port)\n".utf8))
            },
            logger: logger)
        // The client runs beside the server (postgres-nio's PostgresClient is a service that must
        // run for queries to be served); the table exists before the first request.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            try await client.query("""
                CREATE TABLE IF NOT EXISTS \(unescaped: posts) (
                    id bigserial PRIMARY KEY,
                    title text NOT NULL UNIQUE,
                    job_id bigint NOT NULL,
                    published_at timestamptz
                )
                """, logger: logger)
            try await app.runService()   // until SIGTERM or SIGINT
            group.cancelAll()
        }
    }
}
