import Drover
import Foundation
import PostgresNIO

/// Publishes a post: enqueued by `POST /posts` in the transaction that creates the post, run by the
/// app's workers (`posts-example start`), which mark the post published through the worker's
/// PostgreSQL client (``PostsServices``).
struct PublishPost: Job {
    static let queue = "posts"
    static let timeout: Duration? = .seconds(30)

    var postID: Int

    /// One publication per post, however often it is asked for while one waits.
    var uniqueKey: String? { "publish-post:\(postID)" }

    func perform(_ context: JobContext) async throws {
        let services = try context.services(PostsServices.self)
        let rows = try await services.client.query("""
            UPDATE \(unescaped: services.posts) SET published_at = now() WHERE id = \(postID) RETURNING published_at
            """, logger: services.logger)
        var updated = 0
        for try await _ in rows { updated += 1 }
        // The post and its job commit together: a job without its post is a bug, not a retry.
        guard updated == 1 else { throw PermanentJobFailure("post \(postID) does not exist") }
        context.logger.info("published", metadata: ["post": "\(postID)"])
    }
}
