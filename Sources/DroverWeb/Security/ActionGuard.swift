import Foundation
import Hummingbird

/// What stands between a POST and its action: read-only mode, the browser's word that the form
/// came from another site, and the CSRF token.
///
/// The token is one random secret per server process (``Secrets/randomToken()``), put in every
/// form as `csrf_token` and compared in constant time. Another site's page can make a browser
/// post here, credentials and all, but cannot read a page of this one to learn the token; so a
/// POST without it is not the dashboard's own form. (A page whose name resolves to this host
/// could read one: the `Host:` check of ``SecurityMiddleware`` stops that.) A restart makes a new
/// token: a form left open from before is refused once, and works when reloaded.
struct ActionGuard: Sendable {
    let csrfToken: String
    let readOnly: Bool
    /// The most a form may send.
    static let maximumBody = 16 * 1024

    /// The form's fields when the action may run; otherwise the refusal.
    func check(_ request: Request) async -> Result<[String: String], RefusedAction> {
        if readOnly {
            return .failure(RefusedAction(.forbidden, "This dashboard is read-only: actions are disabled.\n"))
        }
        // Browsers say where a request comes from; a form of another site is refused even before the token.
        if let site = request.headers[.secFetchSite], site == "cross-site" || site == "same-site" {
            return .failure(RefusedAction(.forbidden, "Refused: the form was sent from another site.\n"))
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maximumBody)
        } catch {
            return .failure(RefusedAction(.contentTooLarge, "The form is larger than \(Self.maximumBody) bytes.\n"))
        }
        let form = Self.formFields(String(buffer: body))
        guard let token = form["csrf_token"], Secrets.constantTimeEqual(Array(token.utf8), Array(csrfToken.utf8)) else {
            return .failure(RefusedAction(.forbidden, "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.\n"))
        }
        return .success(form)
    }

    /// `application/x-www-form-urlencoded` fields; the last of a repeated name wins.
    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String? { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]) else { continue }
            fields[name] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}

struct RefusedAction: Error {
    let status: HTTPResponse.Status
    let message: String
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }
}
