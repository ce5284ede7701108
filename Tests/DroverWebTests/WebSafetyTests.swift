@testable import DroverWeb
import Foundation
import Testing

/// The dashboard's safety rules as functions, with no server.
@Suite("DroverWeb: comparisons, credentials, forms and templates")
struct WebSafetyTests {
    @Test("constant-time equality: equal only when every byte and the length agree")
    func equality() {
        let secret = Array("0123456789abcdef".utf8)
        #expect(Secrets.constantTimeEqual(secret, secret))
        #expect(!Secrets.constantTimeEqual(Array("0123456789abcdeF".utf8), secret))
        #expect(!Secrets.constantTimeEqual(Array("0123456789abcde".utf8), secret))
        #expect(!Secrets.constantTimeEqual(Array("0123456789abcdef0".utf8), secret))
        #expect(!Secrets.constantTimeEqual([], secret))
        #expect(!Secrets.constantTimeEqual(secret + [0], secret), "a trailing NUL is not the same")
        #expect(Secrets.randomToken().count == 64)
        #expect(Secrets.randomToken() != Secrets.randomToken())
    }

    @Test("Authorization: Basic with any user name (the password after the first colon), or Bearer")
    func credentials() {
        func basic(_ text: String) -> String { "Basic " + Data(text.utf8).base64EncodedString() }
        #expect(OfferedCredential(header: basic("admin:pa:ss")) == .basic(password: "pa:ss"))
        #expect(OfferedCredential(header: basic(":secret")) == .basic(password: "secret"))
        #expect(OfferedCredential(header: basic("no-colon")) == .none)
        #expect(OfferedCredential(header: "bearer  tok") == .bearer("tok"))
        #expect(OfferedCredential(header: "Digest x") == .none)
        #expect(OfferedCredential(header: nil) == .none)
        #expect(OfferedCredential(header: basic("u:secret")).matches("secret"))
        #expect(!OfferedCredential(header: basic("secret:")).matches("secret"), "the user name is not the password")
        #expect(!OfferedCredential.none.matches(""))
    }

    @Test("form fields: percent and plus decoding")
    func formFields() {
        #expect(ActionGuard.formFields("csrf_token=ab%2Bc&x=a+b&empty=&flag") == ["csrf_token": "ab+c", "x": "a b", "empty": "", "flag": ""])
    }

    @Test("Host names a loopback: localhost, 127.x, [::1], with or without a port")
    func loopbackAuthority() {
        for good in ["localhost", "localhost:8089", "LOCALHOST", "127.0.0.1:80", "127.9.9.9", "[::1]:8089", "[::1]", "app.localhost:1"] {
            #expect(HostNames.isLoopback(authority: good), "\(good)")
        }
        for bad in ["evil.example", "evil.example:8089", "127.0.0.1.evil.example", "[::2]:80", "0.0.0.0:80", "10.0.0.1"] {
            #expect(!HostNames.isLoopback(authority: bad), "\(bad)")
        }
    }

    @Test("the templates render, and a template that would print a value unescaped is refused")
    func templates() throws {
        let templates = try Templates()
        let html = templates.render("overview", ["title": "T", "queues": [["name": "<b>"]], "hasQueues": true])
        #expect(html.contains("&lt;b&gt;") && !html.contains("<b>"))
        for text in ["{{{value}}}", "{{& value}}", "{{&value}}", "{{%CONTENT_TYPE:TEXT}}", "{{=<% %>=}}"] {
            #expect(throws: TemplateError.self, "\(text)") { try Templates(sources: ["page": text]) }
        }
        for (name, text) in Templates.sources { #expect(Templates.unescapedTag(in: text) == nil, "\(name)") }
    }
}
