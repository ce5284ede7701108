/// `/jobs`: the filter form, the count, one page of jobs, the link to the next, the bulk actions.
let jobsTemplate = """
    {{<layout}}{{$content}}
    {{#hasNotice}}<p class="notice">{{notice}}</p>{{/hasNotice}}
    <form class="filter" method="get" action="/jobs">
    <label>state <select name="state">{{#stateOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/stateOptions}}</select></label>
    <label>queue <input name="queue" value="{{f_queue}}" size="12"></label>
    <label>class <input name="class" value="{{f_class}}" size="16"></label>
    <label>text in arguments or error <input name="text" value="{{f_text}}" size="16"></label>
    <label>error <input name="error" value="{{f_error}}" size="12"></label>
    <label>arguments contain <input name="args_contain" value="{{f_args_contain}}" placeholder="{&quot;user&quot;: 42}" size="14"></label>
    <label>enqueued after <input name="after" value="{{f_after}}" placeholder="2026-12-02T08:00" size="16"></label>
    <label>before <input name="before" value="{{f_before}}" placeholder="UTC" size="16"></label>
    {{#f_key}}<input type="hidden" name="key" value="{{f_key}}">{{/f_key}}
    <button type="submit">Filter</button> <a href="/jobs">clear</a>
    </form>
    {{#hasError}}<p class="error">{{error}}</p>{{/hasError}}
    {{^hasError}}
    {{#window}}<p class="window">Text searches look at {{searchWindow}} jobs at a time: these are the matches among jobs <span id="search-window">{{window}}</span>.
    {{#olderWindow}}<a class="older-window" href="{{olderWindow}}">Search older jobs →</a>{{/olderWindow}}</p>{{/window}}
    {{#hasCount}}<p class="count"><span id="match-count">{{count}}</span> jobs match.</p>{{/hasCount}}
    {{^readOnly}}{{#bulk}}<a class="bulk" href="{{href}}">{{label}}</a> {{/bulk}}{{/readOnly}}
    {{^hasJobs}}<p class="empty">No jobs.</p>{{/hasJobs}}
    {{#hasJobs}}
    <table class="jobs">
    <thead><tr><th>id</th><th>class</th><th>queue</th><th>state</th><th>attempts</th><th>enqueued</th><th>last error</th></tr></thead>
    <tbody>
    {{#jobs}}
    <tr data-job="{{id}}"><td><a href="/jobs/{{id}}">{{id}}</a></td><td class="name">{{className}}</td><td>{{queue}}</td><td class="state {{state}}">{{state}}</td><td>{{attempts}}</td><td>{{enqueued}}</td><td><code>{{error}}</code></td></tr>
    {{/jobs}}
    </tbody>
    </table>
    {{#next}}<p><a class="next" href="{{next}}">Older jobs →</a></p>{{/next}}
    {{/hasJobs}}
    {{/hasError}}
    {{/content}}{{/layout}}
    """

/// `/jobs/bulk`: how many jobs an action would change, and the form that does it.
let bulkTemplate = """
    {{<layout}}{{$content}}
    {{#hasError}}<p class="error">{{error}}</p>{{/hasError}}
    {{^hasError}}
    <p><span id="bulk-count">{{count}}</span> jobs match {{describe}}. {{action}} applies to {{states}} jobs; any other is skipped.</p>
    {{^readOnly}}
    <form method="post" action="/jobs/bulk">
    <input type="hidden" name="csrf_token" value="{{csrfToken}}">
    {{#fields}}<input type="hidden" name="{{name}}" value="{{value}}">{{/fields}}
    <button type="submit" id="confirm">{{action}} {{count}} jobs</button>
    </form>
    {{/readOnly}}
    <a href="{{back}}">Back</a>
    {{/hasError}}
    {{/content}}{{/layout}}
    """

/// `/jobs/:id`: the job, its arguments, its last error and output, its timeline, its actions.
let jobTemplate = """
    {{<layout}}{{$content}}
    {{#hasNotice}}<p class="notice">{{notice}}</p>{{/hasNotice}}
    <table class="job">
    <tr><th>class</th><td class="name">{{className}}</td></tr>
    <tr><th>queue</th><td>{{queue}}</td></tr>
    <tr><th>state</th><td class="state {{state}}" id="job-state">{{state}}</td></tr>
    <tr><th>priority</th><td>{{priority}}</td></tr>
    <tr><th>attempts</th><td>{{attempts}}; crashes {{crashes}}{{#hasSnoozes}}; snoozes {{snoozes}}{{/hasSnoozes}}</td></tr>
    <tr><th>timeout</th><td>{{timeout}}</td></tr>
    {{#hasKey}}<tr><th>concurrency key</th><td><a href="/jobs?key={{concurrencyKey}}">{{concurrencyKey}}</a></td></tr>{{/hasKey}}
    {{#hasUniqueKey}}<tr><th>unique key</th><td>{{uniqueKey}}</td></tr>{{/hasUniqueKey}}
    </table>
    {{^readOnly}}
    <p class="actions">
    {{#canRetry}}<form method="post" action="/jobs/{{id}}/retry" data-confirm="Retry job {{id}}?"><input type="hidden" name="csrf_token" value="{{csrfToken}}"><button type="submit" id="retry">Retry</button></form>{{/canRetry}}
    {{#canDiscard}}<form method="post" action="/jobs/{{id}}/discard" data-confirm="Discard job {{id}}? It is deleted."><input type="hidden" name="csrf_token" value="{{csrfToken}}"><button type="submit" id="discard">Discard</button></form>{{/canDiscard}}
    {{#canCancel}}<form method="post" action="/jobs/{{id}}/cancel" data-confirm="Cancel job {{id}}?"><input type="hidden" name="csrf_token" value="{{csrfToken}}"><button type="submit" id="cancel">Cancel</button></form>{{/canCancel}}
    </p>
    {{/readOnly}}
    <h3>Arguments</h3>
    <pre class="arguments">{{arguments}}</pre>
    {{#error}}
    <h3>Last error</h3>
    <p><strong>{{class}}</strong>: {{message}}{{#hasExit}} (exit status {{exitStatus}}){{/hasExit}}{{#hasSignal}} (signal {{signal}}){{/hasSignal}}</p>
    {{#hasRetry}}<p id="retried-in">retried in {{retryIn}} ({{backoff}})</p>{{/hasRetry}}
    {{#hasOutput}}<h3>Output (its end)</h3><pre class="output">{{output}}</pre>{{/hasOutput}}
    {{/error}}
    <h3>Timeline (UTC)</h3>
    <table class="timeline">{{#timeline}}<tr><td>{{when}}</td><td>{{what}}</td></tr>{{/timeline}}</table>
    {{/content}}{{/layout}}
    """
