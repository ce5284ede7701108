import DroverRuntime
import Hummingbird

/// The dashboard's stylesheet and script, compiled into the binary: no CDN, nothing to install,
/// and the Content-Security-Policy can allow this server's own files only.
enum Assets {
    /// Appended to the files' URLs, so that a browser that cached them fetches the new ones after an upgrade.
    static let version = "2"

    static let routes: [WebRoute] = [
        .resource("/static/drover.css", isPublic: true) { _ in WebRoute.text(stylesheet, contentType: "text/css; charset=utf-8") },
        .resource("/static/drover.js", isPublic: true) { _ in WebRoute.text(script, contentType: "text/javascript; charset=utf-8") },
        .resource("/static/favicon.svg", isPublic: true) { _ in WebRoute.text(icon, contentType: "image/svg+xml") },
        // Browsers ask for it whatever the page says.
        .resource("/favicon.ico", isPublic: true) { _ in WebRoute.text(icon, contentType: "image/svg+xml") },
    ]

    /// Asks before an action: a form with `data-confirm` is sent only once confirmed. (A script
    /// file, since the policy allows no inline script and no `onclick`.)
    static let script = """
        "use strict";
        document.addEventListener("submit", function (event) {
          var question = event.target.getAttribute("data-confirm");
          if (question && !window.confirm(question)) event.preventDefault();
        });

        """

    /// The tab's icon: a "D" on the accent colour.
    static let icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2a6f97"/>\
        <text x="8" y="12" font-size="11" font-family="sans-serif" font-weight="bold" text-anchor="middle" fill="#fff">D</text></svg>

        """

    static let stylesheet = """
        :root { color-scheme: light dark; --muted: #777; --line: #8884; --accent: #2a6f97; }
        body { font: 15px/1.45 system-ui, sans-serif; margin: 0; }
        header { display: flex; align-items: baseline; gap: 1.5em; padding: .6em 1.5em; border-bottom: 1px solid var(--line); }
        header h1 { font-size: 1.2em; margin: 0; }
        header a { color: inherit; text-decoration: none; }
        nav a { margin-right: 1em; color: var(--accent); }
        .backend { margin: 0 0 0 auto; color: var(--muted); }
        main { padding: 0 1.5em 2em; }
        h2 { font-size: 1.1em; }
        h3 { font-size: 1em; margin-top: 1.6em; }
        table { border-collapse: collapse; }
        th, td { text-align: left; padding: .25em .9em .25em 0; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); }
        td.name { font-weight: 600; }
        tr.paused td, tr.stale td { color: var(--muted); }
        code { font-size: .9em; word-break: break-all; }
        form { display: inline; margin: 0; }
        button { font: inherit; padding: .1em .7em; cursor: pointer; }
        .empty { color: var(--muted); }
        .state.failed { color: #b00020; }
        .state.finished { color: #3a7d44; }
        .notice { padding: .4em .8em; border-left: 3px solid var(--accent); }
        .error { padding: .4em .8em; border-left: 3px solid #b00020; }
        form.filter { display: flex; flex-wrap: wrap; gap: .5em 1em; align-items: end; margin: 1em 0; }
        form.filter label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
        a.bulk { margin-right: 1em; }
        pre { background: #8881; padding: .6em; overflow-x: auto; max-height: 30em; }
        img.chart { max-width: 100%; height: auto; }
        p.actions form { margin-right: .5em; }

        """
}
