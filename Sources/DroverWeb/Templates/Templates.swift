import Foundation
import Mustache

/// The dashboard's Mustache templates, compiled into the binary (no files to install or find).
///
/// Every `{{name}}` is HTML-escaped (`<`, `>`, `&`, `"`, `'`), so a value from the database, a job's
/// arguments holding `<script>` say, shows as text. The tags that would print a value unescaped
/// (`{{{name}}}`, `{{&name}}`) and pragmas (`{{%…}}`, which can turn escaping off) are refused when
/// the templates are loaded, so that no template can opt out.
///
/// A page's template fills the layout's blocks:
///
/// ```mustache
/// {{<layout}}{{$content}}<h2>Queues</h2>{{#queues}}<p>{{name}}</p>{{/queues}}{{/content}}{{/layout}}
/// ```
public struct Templates: Sendable {
    /// Every template by name. A new page adds its own here.
    public static let sources: [String: String] = [
        "layout": layoutTemplate,
        "overview": overviewTemplate,
        "jobs": jobsTemplate,
        "bulk": bulkTemplate,
        "job": jobTemplate,
        "recurring": recurringTemplate,
        "concurrency": concurrencyTemplate,
        "processes": processesTemplate,
    ]

    private let library: MustacheLibrary

    public init(sources: [String: String] = Templates.sources) throws {
        var library = MustacheLibrary()
        for (name, text) in sources.sorted(by: { $0.key < $1.key }) {
            if let problem = Self.unescapedTag(in: text) {
                throw TemplateError(description: "template \(name) uses \(problem), which would print a value unescaped; write {{name}}")
            }
            do {
                try library.register(text, named: name)
            } catch {
                throw TemplateError(description: "template \(name) is not valid Mustache: \(error)")
            }
        }
        self.library = library
    }

    /// The first tag in `text` that prints unescaped or changes how the template renders.
    static func unescapedTag(in text: String) -> String? {
        for tag in ["{{{", "{{&", "{{%", "{{ &", "{{ {", "{{ %", "{{="] where text.contains(tag) { return "\(tag)…" }
        return nil
    }

    /// `name` rendered with `values`; an unknown template is a programming error, shown as such.
    public func render(_ name: String, _ values: [String: Any]) -> String {
        library.render(values, withTemplate: name) ?? "template \(name) is missing"
    }
}

public struct TemplateError: Error, CustomStringConvertible {
    public let description: String
}
