/// The page around every page: the head (no inline script or style: the Content-Security-Policy
/// allows only this server's own files), the navigation and a block for the page's content.
let layoutTemplate = """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <title>{{title}} · Drover</title>
    <link rel="stylesheet" href="/static/drover.css?v={{assetVersion}}">
    <link rel="icon" href="/static/favicon.svg?v={{assetVersion}}" type="image/svg+xml">
    <script src="/static/drover.js?v={{assetVersion}}" defer></script>
    </head>
    <body>
    <header>
    <h1><a href="/">Drover</a></h1>
    <nav><a href="/">Overview</a> <a href="/jobs">Jobs</a> <a href="/recurring">Recurring</a> <a href="/concurrency">Limits</a> <a href="/processes">Processes</a> <a href="/metrics">Metrics</a></nav>
    <p class="backend">{{backend}}{{#readOnly}} · read-only{{/readOnly}}</p>
    </header>
    <main>
    <h2>{{title}}</h2>
    {{$content}}{{/content}}
    </main>
    </body>
    </html>

    """
