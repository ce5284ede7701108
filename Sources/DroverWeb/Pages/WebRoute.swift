import DroverQueue
import Foundation
import Hummingbird

/// What a page, an action or a resource works with: the database, the server's settings and the
/// request.
public struct WebContext: Sendable {
    public let store: WebStore
    public let settings: WebSettings
    /// The token every form carries in `csrf_token` (``WebRoute/action(_:_:)`` checks it).
    public let csrfToken: String
    public let templates: Templates
    public let request: Request
    /// The path's parameters: `name` for `/queues/:name/pause`.
    public let parameters: Parameters
    /// An action's form fields; empty for a GET.
    public let form: [String: String]

    /// Whether actions are hidden and refused (`web.read_only`, `drover web --read-only`).
    public var readOnly: Bool { settings.readOnly }

    /// `template` inside the layout, as an HTML page. `values` are the template's; every `{{name}}`
    /// in a template is HTML-escaped (a template may not use `{{{…}}}`, `{{&…}}` or pragmas:
    /// ``Templates`` refuses them), so a value from the database shows as text.
    ///
    /// ```swift
    /// context.render("overview", title: "Overview", ["queues": queues.map { ["name": $0.name] }])
    /// ```
    public func render(_ template: String, title: String, _ values: [String: Any] = [:]) -> HTMLPage {
        var all = values
        all["title"] = title
        all["readOnly"] = readOnly
        all["csrfToken"] = csrfToken
        all["backend"] = store.backendName
        all["assetVersion"] = Assets.version
        return HTMLPage(html: templates.render(template, all))
    }
}

/// A rendered page.
public struct HTMLPage: Sendable {
    public let html: String
}

/// What an action did: where the browser goes next (Post/Redirect/Get).
public struct ActionResult: Sendable {
    public let location: String
    public static func redirect(to location: String) -> ActionResult { ActionResult(location: location) }
}

/// One entry of the dashboard's route table (``WebRoutes/all``).
///
/// - A page is a GET that renders a template in the layout; it never changes anything.
/// - An action is a POST that changes something: refused (403) in read-only mode, and without the
///   form's `csrf_token` or with a wrong one; it answers with a redirect.
/// - A resource is a GET that answers something else than a page (`/healthz`, `/metrics`, CSS).
///
/// ```swift
/// WebRoute.page("/queues") { context in
///     let queues = try await context.store.read { try $0.listQueues() }
///     return context.render("queues", title: "Queues", ["queues": queues.map { ["name": $0.name] }])
/// }
/// WebRoute.action("/queues/:name/clear") { context in
///     let name = try context.parameters.require("name")
///     _ = try await context.store.read { try $0.clear(name) }
///     return .redirect(to: "/")
/// }
/// ```
public struct WebRoute: Sendable {
    public enum Kind: Sendable, Equatable {
        case page, action, resource
    }

    public let kind: Kind
    /// Hummingbird's path syntax: `/queues/:name/pause`.
    public let path: String
    /// Whether it answers without authentication (`/healthz`, for a load balancer or systemd).
    public let isPublic: Bool
    let handler: @Sendable (WebContext) async throws -> Response

    public var method: HTTPRequest.Method { kind == .action ? .post : .get }

    public static func page(_ path: String, _ render: @escaping @Sendable (WebContext) async throws -> HTMLPage) -> WebRoute {
        WebRoute(kind: .page, path: path, isPublic: false) { context in
            let page = try await render(context)
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page.html)))
        }
    }

    public static func action(_ path: String, _ perform: @escaping @Sendable (WebContext) async throws -> ActionResult) -> WebRoute {
        WebRoute(kind: .action, path: path, isPublic: false) { context in
            let result = try await perform(context)
            return Response(status: .seeOther, headers: [.location: result.location])
        }
    }

    public static func resource(
        _ path: String, isPublic: Bool = false, _ respond: @escaping @Sendable (WebContext) async throws -> Response
    ) -> WebRoute {
        WebRoute(kind: .resource, path: path, isPublic: isPublic, handler: respond)
    }

    /// A plain-text response (`/healthz`, `/metrics`, errors).
    public static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// The dashboard's routes. A new page or action is added here (and its template to
/// ``Templates/sources``).
public enum WebRoutes {
    public static let all: [WebRoute] = OverviewPage.routes + QueueActions.routes + JobsPages.routes + MorePages.routes
        + HealthCheck.routes + MetricsPage.routes + Assets.routes
}
