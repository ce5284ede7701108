let recurringTemplate = """
    {{<layout}}{{$content}}
    {{^hasTasks}}<p class="empty">No recurring tasks.</p>{{/hasTasks}}
    {{#hasTasks}}
    <table class="recurring">
    <thead><tr><th>key</th><th>schedule</th><th>time zone</th><th>class</th><th>queue</th><th>next run (UTC)</th><th>last run</th><th>last job</th><th>from</th>{{^readOnly}}<th></th>{{/readOnly}}</tr></thead>
    <tbody>
    {{#tasks}}
    <tr><td class="name">{{key}}</td><td><code>{{schedule}}</code></td><td>{{timeZone}}</td><td>{{className}}</td><td>{{queue}}</td><td>{{next}}</td><td>{{last}}</td>
    <td>{{#hasLastJob}}<a href="/jobs/{{lastJob}}">{{lastJob}}</a> {{lastState}}{{/hasLastJob}}</td><td>{{source}}</td>
    {{^readOnly}}<td><form method="post" action="{{action}}" data-confirm="Enqueue {{key}} now?"><input type="hidden" name="csrf_token" value="{{csrfToken}}"><button type="submit">Enqueue now</button></form></td>{{/readOnly}}
    </tr>
    {{/tasks}}
    </tbody>
    </table>
    {{/hasTasks}}
    {{/content}}{{/layout}}
    """

let concurrencyTemplate = """
    {{<layout}}{{$content}}
    <h2>Concurrency</h2>
    {{^hasKeys}}<p class="empty">No concurrency key is in use.</p>{{/hasKeys}}
    {{#hasKeys}}
    <table class="concurrency">
    <thead><tr><th>key</th><th>limit</th><th>holding</th><th>blocked</th><th>slots expire</th></tr></thead>
    <tbody>
    {{#keys}}
    <tr><td class="name">{{key}}</td><td>{{limit}}</td><td><a href="{{holders}}">{{holding}}</a></td><td><a href="{{blockedJobs}}">{{blocked}}</a></td><td>{{expires}}</td></tr>
    {{/keys}}
    </tbody>
    </table>
    {{/hasKeys}}
    <h2>Rate limits</h2>
    {{^hasRateKeys}}<p class="empty">No rate-limit key is in use.</p>{{/hasRateKeys}}
    {{#hasRateKeys}}
    <table class="rate-limits">
    <thead><tr><th>key</th><th>started</th><th>limit</th><th>period</th><th>waiting</th><th>line ends</th></tr></thead>
    <tbody>
    {{#rateKeys}}
    <tr><td class="name">{{key}}</td><td>{{started}}</td><td>{{limit}}</td><td>{{period}}</td><td>{{waiting}}</td><td>{{lineEnds}}</td></tr>
    {{/rateKeys}}
    </tbody>
    </table>
    {{/hasRateKeys}}
    {{/content}}{{/layout}}
    """

let processesTemplate = """
    {{<layout}}{{$content}}
    {{^hasProcesses}}<p class="empty">No process is registered.</p>{{/hasProcesses}}
    {{#hasProcesses}}
    <table class="processes">
    <thead><tr><th>id</th><th>kind</th><th>name</th><th>host</th><th>pid</th><th>heartbeat</th><th>running jobs</th><th>supervisor</th></tr></thead>
    <tbody>
    {{#processes}}
    <tr><td>{{id}}</td><td>{{kind}}</td><td class="name">{{name}}</td><td>{{hostname}}</td><td>{{pid}}</td><td>{{heartbeat}} ago</td><td>{{running}}</td><td>{{supervisor}}</td></tr>
    {{/processes}}
    </tbody>
    </table>
    {{/hasProcesses}}
    {{/content}}{{/layout}}
    """
