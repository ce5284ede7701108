/// `/`: the queues with their depth and whether they are paused (with the pause or resume
/// action), the processes, and the newest jobs.
let overviewTemplate = """
    {{<layout}}{{$content}}
    <section>
    <h3>Last hour</h3>
    <p><span id="finished-hour">{{finishedLastHour}}</span> finished, <span id="failed-hour">{{failedLastHour}}</span> failed.</p>
    <img class="chart" src="/chart.svg" width="{{chartWidth}}" height="{{chartHeight}}" alt="Jobs finished (green) and failed (red) per minute over the last hour">
    </section>
    <section>
    <h3>Queues</h3>
    {{^queues}}<p class="empty">No queue has jobs or is paused.</p>{{/queues}}
    {{#hasQueues}}
    <table class="queues">
    <thead><tr><th>queue</th><th>ready</th><th>scheduled</th><th>running</th><th>blocked</th><th>failed</th><th>oldest ready</th><th>state</th>{{^readOnly}}<th></th>{{/readOnly}}</tr></thead>
    <tbody>
    {{#queues}}
    <tr{{#paused}} class="paused"{{/paused}}>
    <td class="name">{{name}}</td><td>{{ready}}</td><td>{{scheduled}}</td><td>{{claimed}}</td><td>{{blocked}}</td><td>{{failed}}</td><td>{{oldest}}</td>
    <td>{{#paused}}paused{{/paused}}{{^paused}}active{{/paused}}</td>
    {{^readOnly}}<td>
    <form method="post" action="{{action}}" data-confirm="{{verb}} queue {{name}}?">
    <input type="hidden" name="csrf_token" value="{{csrfToken}}">
    <button type="submit">{{verb}}</button>
    </form>
    </td>{{/readOnly}}
    </tr>
    {{/queues}}
    </tbody>
    </table>
    {{/hasQueues}}
    <h3>Paused job classes</h3>
    {{^hasPausedClasses}}<p class="empty">No job class is paused.</p>{{/hasPausedClasses}}
    {{#hasPausedClasses}}
    <table class="classes">
    <thead><tr><th>class</th><th>waiting</th><th>paused since (UTC)</th>{{^readOnly}}<th></th>{{/readOnly}}</tr></thead>
    <tbody>
    {{#pausedClasses}}
    <tr class="paused"><td class="name">{{name}}</td><td>{{ready}}</td><td>{{since}}</td>
    {{^readOnly}}<td><form method="post" action="/classes/{{name}}/resume" data-confirm="Resume class {{name}}?">
    <input type="hidden" name="csrf_token" value="{{csrfToken}}"><button type="submit">Resume</button></form></td>{{/readOnly}}
    </tr>
    {{/pausedClasses}}
    </tbody>
    </table>
    {{/hasPausedClasses}}
    {{^readOnly}}
    <form method="post" action="/classes/pause" class="pause-class" data-confirm="Pause this job class on every queue?">
    <input type="hidden" name="csrf_token" value="{{csrfToken}}">
    <label>Pause a job class on every queue: <input type="text" name="class" required maxlength="200" placeholder="SendReport"></label>
    <button type="submit" id="pause-class">Pause</button>
    </form>
    {{/readOnly}}
    </section>
    <section>
    <h3>Processes</h3>
    {{^processes}}<p class="empty">No process is registered.</p>{{/processes}}
    {{#hasProcesses}}
    <table class="processes">
    <thead><tr><th>kind</th><th>name</th><th>host</th><th>pid</th><th>heartbeat</th><th>jobs</th></tr></thead>
    <tbody>
    {{#processes}}
    <tr{{#stale}} class="stale"{{/stale}}><td>{{kind}}</td><td class="name">{{name}}</td><td>{{hostname}}</td><td>{{pid}}</td><td>{{heartbeat}} ago</td><td>{{claimed}}</td></tr>
    {{/processes}}
    </tbody>
    </table>
    {{/hasProcesses}}
    </section>
    <section>
    <h3>Newest failures</h3>
    {{^hasFailures}}<p class="empty">No failed jobs.</p>{{/hasFailures}}
    {{#hasFailures}}
    <table class="failures">
    <thead><tr><th>id</th><th>class</th><th>queue</th><th>attempts</th><th>enqueued</th><th>error</th></tr></thead>
    <tbody>
    {{#failures}}
    <tr><td><a href="/jobs/{{id}}">{{id}}</a></td><td class="name">{{className}}</td><td>{{queue}}</td><td>{{attempts}}</td><td>{{enqueued}}</td><td><code>{{error}}</code></td></tr>
    {{/failures}}
    </tbody>
    </table>
    <p><a href="/jobs?state=failed">Every failed job →</a></p>
    {{/hasFailures}}
    </section>
    <section>
    <h3>Newest jobs</h3>
    {{^jobs}}<p class="empty">No jobs.</p>{{/jobs}}
    {{#hasJobs}}
    <table class="jobs">
    <thead><tr><th>id</th><th>class</th><th>queue</th><th>state</th><th>attempts</th><th>arguments</th></tr></thead>
    <tbody>
    {{#jobs}}
    <tr><td><a href="/jobs/{{id}}">{{id}}</a></td><td class="name">{{className}}</td><td>{{queue}}</td><td class="state {{state}}">{{state}}</td><td>{{attempts}}</td><td><code>{{arguments}}</code></td></tr>
    {{/jobs}}
    </tbody>
    </table>
    {{/hasJobs}}
    </section>
    {{/content}}{{/layout}}
    """
