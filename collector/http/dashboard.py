"""The built-in dashboard on the internal listener: ``/dashboard`` (HTML, JS and CSS served from
``static/dashboard``, no external request), a login that turns the analyst (or admin) token into a
session cookie, and ``/dashboard/api/*`` data endpoints.

Every number comes from the analyst views through the analyst role's sandbox
(``Store.run_sandboxed(sql, "analyst", fmt)``), whatever token opened the session, so the dashboard can
never show more than an analyst's own SQL can. Each panel is one SQL statement over the views, built in
``panel_sql`` from validated values only: a site from the allow-list (configured sites and sites the
views know), ISO dates, an integer limit, funnel steps quoted with a strict validator (the sandbox
refuses query parameters).

Sessions: ``POST /dashboard/login`` with the token in a form body sets an ``HttpOnly``,
``SameSite=Strict``, ``Path=/dashboard`` cookie holding a random session id. Sessions live in memory
only (bounded, expiring); the token never appears in a URL, in the page or in script-readable storage.
Without a valid session every data endpoint answers 401 and the page shows the login form.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.credentials import usable
from collector.errors import BadRequest, CollectorError, Forbidden, RateLimited, Unauthorized

STATIC = Path(__file__).resolve().parent / "static" / "dashboard"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
COOKIE = "collector_dashboard"
SESSION_TTL_S = 8 * 3600
SESSION_IDLE_S = 3600
MAX_SESSIONS = 64
LOGIN_FAILURES_PER_MINUTE = 10
MAX_RANGE_DAYS = 400
MAX_LIMIT = 500
MAX_STEPS = 8
MAX_STEP_CHARS = 200
SITES_TTL_S = 30.0

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cache-Control": "no-store",
}


# -- the panels ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Params:
    """Validated values for a panel's SQL."""

    site: str
    since: dt.date
    until: dt.date
    limit: int = 10
    steps: tuple[str, ...] = ()

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> "Params":
        """The period of the same length just before this one."""
        span = dt.timedelta(days=self.days)
        return Params(self.site, self.since - span, self.until - span, self.limit, self.steps)


# the daily views computed from visits (schema/migrations/R_views.sql), each with a ``_between`` twin
VISIT_VIEWS = frozenset({
    "traffic_daily", "traffic_hourly", "entry_pages_daily", "exit_pages_daily", "sources_daily", "referrers_daily",
    "utm_sources_daily", "utm_mediums_daily", "utm_campaigns_daily", "utm_terms_daily", "utm_contents_daily",
    "transitions_daily", "goals_daily",
})


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    sql: str  # a template: {site}, {since}, {until} (SQL dates), {since_text}, {until_text} (date strings),
    #           {day_before} and {day_after} (the days around the range, as strings), {limit}, {steps} (an array)


# Views over visits are read through their parameterized twin ``<view>_between(since, until)``: the same
# rows for the days of the range, computed from the visit slices around the range only (the plain view
# builds every visit of the stored data first). The day filter stays, so the statement reads exactly the
# rows the plain view would give.
_BETWEEN = "_between(since = {since_text}, until = {until_text})"


def _source(view: str) -> str:
    return view + _BETWEEN if view in VISIT_VIEWS else view


def _breakdown(view: str, dims: str, measures: str, order: str) -> str:
    return (f"SELECT {dims}, {measures} FROM {_source(view)} "
            f"WHERE site = {{site}} AND day BETWEEN {{since}} AND {{until}} "
            f"GROUP BY {dims} ORDER BY {order}, {dims} LIMIT {{limit}}")


# measures of the visit views (entry/exit pages, sources, referrers, UTM); the duration is the
# visit-weighted mean of the days' averages
_VISIT = ("sum(visits) AS n_visits, sum(visitors) AS n_visitors, "
          "if(n_visits > 0, round(sum(bounces) / n_visits, 4), 0) AS n_bounce_rate, "
          "if(n_visits > 0, round(sum(visit_duration_s * visits) / n_visits, 1), 0) AS n_visit_duration_s")
_VISIT_COLS = "visits, visitors, bounce_rate, visit_duration_s"
_PEOPLE = "sum(visitors) AS n_visitors, sum(pageviews) AS n_pageviews"


def _visit_panel(view: str, dim: str, label: str | None = None) -> str:
    inner = _breakdown(view, dim, _VISIT, "n_visits DESC")
    shown = f"{dim} AS {label}" if label else dim
    return (f"SELECT {shown}, n_visits AS visits, n_visitors AS visitors, n_bounce_rate AS bounce_rate, "
            f"n_visit_duration_s AS visit_duration_s FROM ({inner})")


def _people_panel(view: str, dims: str) -> str:
    inner = _breakdown(view, dims, _PEOPLE, "n_visitors DESC, n_pageviews DESC")
    return f"SELECT {dims}, n_visitors AS visitors, n_pageviews AS pageviews FROM ({inner})"


_RANGE = "site = {site} AND day BETWEEN {since} AND {until}"

PANELS: dict[str, Panel] = {p.name: p for p in [
    Panel("summary", "Headline figures",
          "SELECT n_visitors AS visitors, n_visits AS visits, n_pageviews AS pageviews, "
          "if(n_visits > 0, round(n_bounces / n_visits, 4), 0) AS bounce_rate, "
          "if(n_visits > 0, round(n_duration / n_visits, 1), 0) AS visit_duration_s "
          "FROM (SELECT sum(visitors) AS n_visitors, sum(visits) AS n_visits, sum(pageviews) AS n_pageviews, "
          "sum(bounces) AS n_bounces, sum(visit_duration_s * visits) AS n_duration "
          f"FROM traffic_daily{_BETWEEN} WHERE {_RANGE})"),
    Panel("daily", "Traffic per day",
          "SELECT day, visitors, visits, pageviews, bounce_rate, visit_duration_s "
          f"FROM traffic_daily{_BETWEEN} WHERE {_RANGE} ORDER BY day LIMIT 1000"),
    # the hours are chosen by the server's clock, the twin's days by the site's: a day either side holds them
    Panel("hourly", "Traffic per hour",
          "SELECT hour, visitors, visits, pageviews, bounce_rate, visit_duration_s "
          "FROM traffic_hourly_between(since = {day_before}, until = {day_after}) "
          "WHERE site = {site} AND hour >= toDateTime({since}) AND hour < toDateTime({until} + 1) "
          "ORDER BY hour LIMIT 1000"),
    Panel("realtime", "Visitors in the last 5 minutes",
          "SELECT sum(visitors) AS visitors, sum(pageviews) AS pageviews, toUInt8(count() > 0 AND max(suppressed) = 1) "
          "AS suppressed FROM realtime WHERE site = {site}"),
    Panel("pages", "Top pages",
          "SELECT path, n_visitors AS visitors, n_pageviews AS pageviews, n_time_on_page_s AS time_on_page_s FROM ("
          + _breakdown("pages_daily", "path",
                       "sum(visitors) AS n_visitors, sum(pageviews) AS n_pageviews, "
                       "round(sum(engagement_ms) / 1000 / greatest(n_pageviews, 1), 1) AS n_time_on_page_s",
                       "n_pageviews DESC, n_visitors DESC") + ")"),
    Panel("entry_pages", "Entry pages", _visit_panel("entry_pages_daily", "entry_page")),
    Panel("exit_pages", "Exit pages", _visit_panel("exit_pages_daily", "exit_page")),
    Panel("sources", "Sources", _visit_panel("sources_daily", "source")),
    Panel("referrers", "Referring sites", _visit_panel("referrers_daily", "referrer_host")),
    Panel("utm_sources", "UTM source", _visit_panel("utm_sources_daily", "utm_source")),
    Panel("utm_mediums", "UTM medium", _visit_panel("utm_mediums_daily", "utm_medium")),
    Panel("utm_campaigns", "UTM campaign", _visit_panel("utm_campaigns_daily", "utm_campaign")),
    Panel("utm_terms", "UTM term", _visit_panel("utm_terms_daily", "utm_term")),
    Panel("utm_contents", "UTM content", _visit_panel("utm_contents_daily", "utm_content")),
    Panel("countries", "Countries", _people_panel("countries_daily", "country")),
    Panel("regions", "Regions", _people_panel("regions_daily", "country, region")),
    Panel("isps", "Networks (ISP)", _people_panel("isps_daily", "asn, isp")),
    Panel("devices", "Devices", _people_panel("devices_daily", "device")),
    Panel("browsers", "Browsers", _people_panel("browsers_daily", "browser")),
    Panel("browser_versions", "Browser versions", _people_panel("browser_versions_daily", "browser, browser_version")),
    Panel("os", "Operating systems", _people_panel("os_daily", "os")),
    Panel("os_versions", "OS versions", _people_panel("os_versions_daily", "os, os_version")),
    Panel("platforms", "Platforms", _people_panel("platforms_daily", "platform")),
    Panel("searches", "Site searches",
          "SELECT search_term, n_searches AS searches, n_visitors AS visitors FROM ("
          + _breakdown("searches_daily", "search_term", "sum(searches) AS n_searches, sum(visitors) AS n_visitors",
                       "n_searches DESC") + ")"),
    Panel("outbound_links", "Outbound links",
          "SELECT link_url, n_clicks AS clicks, n_visitors AS visitors FROM ("
          + _breakdown("outbound_links_daily", "link_url", "sum(clicks) AS n_clicks, sum(visitors) AS n_visitors",
                       "n_clicks DESC") + ")"),
    Panel("downloads", "Downloads",
          "SELECT link_url, n_clicks AS clicks, n_visitors AS visitors FROM ("
          + _breakdown("downloads_daily", "link_url", "sum(clicks) AS n_clicks, sum(visitors) AS n_visitors",
                       "n_clicks DESC") + ")"),
    Panel("events", "Custom events",
          "SELECT name, n_events AS events, n_visitors AS visitors FROM ("
          "SELECT name, sum(events) AS n_events, sum(visitors) AS n_visitors FROM events_daily "
          f"WHERE {_RANGE} AND name NOT IN ('pageview', 'engagement') "
          "GROUP BY name ORDER BY n_events DESC, name LIMIT {limit})"),
    Panel("event_props", "Event properties",
          "SELECT name, prop, value, n_events AS events, n_visitors AS visitors FROM ("
          + _breakdown("event_props_daily", "name, prop, value", "sum(events) AS n_events, sum(visitors) AS n_visitors",
                       "n_events DESC") + ")"),
    Panel("goals", "Goals",
          "SELECT goal, n_conversions AS conversions, n_visitors AS visitors, "
          "if(n_visits > 0, round(n_conversions / n_visits, 4), 0) AS conversion_rate FROM ("
          + _breakdown("goals_daily", "goal", "sum(conversions) AS n_conversions, sum(visitors) AS n_visitors, "
                       "sum(visits) AS n_visits", "n_conversions DESC") + ")"),
    Panel("transitions", "Click stream (page to page)",
          "SELECT from_path, to_path, n_transitions AS transitions, n_visitors AS visitors FROM ("
          + _breakdown("transitions_daily", "from_path, to_path",
                       "sum(transitions) AS n_transitions, sum(visitors) AS n_visitors", "n_transitions DESC") + ")"),
    Panel("funnel", "Funnel",
          "SELECT level, step, visits, visitors, conversion_rate, suppressed "
          "FROM funnel(steps = {steps}, since = {since_text}, until = {until_text}) WHERE site = {site} "
          "ORDER BY level LIMIT {limit}"),
]}


# -- validated values ---------------------------------------------------------------------------------
_SITE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-:]{0,251}[A-Za-z0-9])?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def quote(text: str) -> str:
    """A ClickHouse string literal for a validated value (printable, bounded); anything else is refused."""
    if not isinstance(text, str) or len(text) > MAX_STEP_CHARS or not text.isprintable():
        raise BadRequest("a value must be printable text of at most %d characters" % MAX_STEP_CHARS)
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_date(value: str | None, what: str) -> dt.date:
    if not value or not _DATE.match(value):
        raise BadRequest(f"{what} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{what} must be a date YYYY-MM-DD") from None


def parse_params(query, sites: frozenset[str]) -> Params:
    site = query.get("site", "")
    if not _SITE.match(site) or site not in sites:
        raise BadRequest("site must be one of the sites the collector knows")
    since, until = parse_date(query.get("since"), "since"), parse_date(query.get("until"), "until")
    if until < since:
        raise BadRequest("until must not be before since")
    if (until - since).days + 1 > MAX_RANGE_DAYS:
        raise BadRequest(f"the range must be at most {MAX_RANGE_DAYS} days")
    try:
        limit = int(query.get("limit", "10"))
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be 1 to {MAX_LIMIT}")
    steps = tuple(s.strip() for s in query.getlist("step") if s.strip()) if hasattr(query, "getlist") else ()
    if len(steps) > MAX_STEPS:
        raise BadRequest(f"a funnel has at most {MAX_STEPS} steps")
    for s in steps:
        quote(s)
    return Params(site, since, until, limit, steps)


def panel_sql(name: str, p: Params) -> str:
    """The SQL of one panel for validated parameters."""
    panel = PANELS.get(name)
    if panel is None:
        raise BadRequest(f"unknown panel {name!r}")
    if name == "funnel" and not p.steps:
        raise BadRequest("the funnel needs at least one step (step=...)")
    return panel.sql.format(site=quote(p.site), since=f"toDate('{p.since.isoformat()}')",
                            until=f"toDate('{p.until.isoformat()}')", since_text=f"'{p.since.isoformat()}'",
                            until_text=f"'{p.until.isoformat()}'",
                            day_before=f"'{(p.since - dt.timedelta(days=1)).isoformat()}'",
                            day_after=f"'{(p.until + dt.timedelta(days=1)).isoformat()}'", limit=int(p.limit),
                            steps="[" + ", ".join(quote(s) for s in p.steps) + "]")


_INT = re.compile(r"^(?:Nullable\()?U?Int(?:8|16|32|64|128|256)\)?$")
_FLOAT = re.compile(r"^(?:Nullable\()?(?:Float(?:32|64)|Decimal.*)\)?$")


def decode_json_compact(body: bytes) -> tuple[list[str], list[str], list[list]]:
    """Columns, types and rows of a ``JSONCompact`` answer, 64-bit integers as numbers."""
    doc = json.loads(body)
    cols = [m["name"] for m in doc.get("meta", [])]
    types = [m["type"] for m in doc.get("meta", [])]
    conv = [int if _INT.match(t) else float if _FLOAT.match(t) else None for t in types]
    rows = []
    for row in doc.get("data", []):
        rows.append([c(v) if c is not None and isinstance(v, str) else v for c, v in zip(conv, row)])
    return cols, types, rows


def run_panel(store, name: str, p: Params, fmt: str = "JSONCompact"):
    """One panel through the analyst's sandbox: ``(sql, sandbox.Result)``."""
    sql = panel_sql(name, p)
    return sql, store.run_sandboxed(sql, "analyst", fmt)


# -- sessions -----------------------------------------------------------------------------------------
class Sessions:
    """Dashboard sessions in memory: the SHA-256 of each random id, with its expiry; bounded."""

    def __init__(self, max_sessions: int = MAX_SESSIONS, ttl_s: float = SESSION_TTL_S, idle_s: float = SESSION_IDLE_S):
        self.max, self.ttl, self.idle = max_sessions, ttl_s, idle_s
        self._by_hash: collections.OrderedDict[bytes, list[float]] = collections.OrderedDict()
        self._failures: collections.deque[float] = collections.deque()

    @staticmethod
    def _key(sid: str) -> bytes:
        return hashlib.sha256(sid.encode()).digest()

    def create(self) -> str:
        now = time.monotonic()
        self._expire(now)
        while len(self._by_hash) >= self.max:
            self._by_hash.popitem(last=False)
        sid = secrets.token_urlsafe(32)
        self._by_hash[self._key(sid)] = [now + self.ttl, now + self.idle]
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid or len(sid) > 100:
            return False
        now = time.monotonic()
        entry = self._by_hash.get(self._key(sid))
        if entry is None:
            return False
        if now >= entry[0] or now >= entry[1]:
            self._by_hash.pop(self._key(sid), None)
            return False
        entry[1] = min(entry[0], now + self.idle)
        self._by_hash.move_to_end(self._key(sid))
        return True

    def drop(self, sid: str | None) -> None:
        if sid:
            self._by_hash.pop(self._key(sid), None)

    def _expire(self, now: float) -> None:
        for key in [k for k, (hard, idle) in self._by_hash.items() if now >= hard or now >= idle]:
            del self._by_hash[key]

    def throttled(self) -> bool:
        now = time.monotonic()
        while self._failures and self._failures[0] < now - 60:
            self._failures.popleft()
        return len(self._failures) >= LOGIN_FAILURES_PER_MINUTE

    def failed(self) -> None:
        self._failures.append(time.monotonic())

    def __len__(self) -> int:
        return len(self._by_hash)


def _state(request: Request):
    """The app's sessions and the gate that queues dashboard queries (one at a time: the analyst role
    has one connection, and a queue inside the server never answers 'busy' to the page)."""
    st = request.app.state
    if not hasattr(st, "dashboard_sessions"):
        st.dashboard_sessions = Sessions()
        st.dashboard_gate = asyncio.Semaphore(1)
    return st.dashboard_sessions, st.dashboard_gate


def _secure(resp: Response) -> Response:
    for k, v in HEADERS.items():
        resp.headers.setdefault(k, v)
    return resp


def _error(exc: CollectorError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return _secure(JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers))


def _same_origin(request: Request) -> bool:
    """State-changing requests must come from the dashboard itself (no cross-site form posts)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        return origin in (f"http://{host}", f"https://{host}")
    return origin != "null"


def _role_for(svc, token: str) -> str | None:
    token = token.strip()
    if not usable(token):
        return None
    given = token.encode()
    ok_admin = hmac.compare_digest(given, svc.admin_token.encode())
    ok_analyst = hmac.compare_digest(given, svc.analyst_token.encode())
    return "admin" if ok_admin else "analyst" if ok_analyst else None


def _authorized(request: Request) -> None:
    sessions, _ = _state(request)
    if not sessions.valid(request.cookies.get(COOKIE)):
        raise Unauthorized("log in to the dashboard with the analyst token")


# -- endpoints ----------------------------------------------------------------------------------------
async def page(request: Request) -> Response:
    """The page itself (no data in it): the script shows the login form or the dashboard."""
    return _secure(Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8"))


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return _secure(JSONResponse({"error": "not_found", "message": "no such endpoint"}, status_code=404))
    return _secure(Response((STATIC / name).read_bytes(), media_type=ASSETS[name]))


async def login(request: Request) -> Response:
    sessions, _ = _state(request)
    wants_json = "application/json" in request.headers.get("accept", "")
    if not _same_origin(request):
        return _error(Forbidden("the login must come from the dashboard page"))
    if sessions.throttled():
        return _error(RateLimited("too many failed logins; wait a minute", retry_after=60))
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _error(BadRequest("post the login form (application/x-www-form-urlencoded)"))
    body = await request.body()
    if len(body) > 4096:
        return _error(BadRequest("the login form is too large"))
    from urllib.parse import parse_qs

    token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
    role = _role_for(request.app.state.collector, token)
    if role is None:
        sessions.failed()
        if wants_json:
            return _error(Unauthorized("that is not the analyst or admin token"))
        return _secure(RedirectResponse("/dashboard#login-failed", status_code=303))
    sessions.drop(request.cookies.get(COOKIE))
    sid = sessions.create()
    resp = JSONResponse({"ok": True}) if wants_json else RedirectResponse("/dashboard", status_code=303)
    resp.set_cookie(COOKIE, sid, max_age=SESSION_TTL_S, path="/dashboard", httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    return _secure(resp)


async def logout(request: Request) -> Response:
    sessions, _ = _state(request)
    if not _same_origin(request):
        return _error(Forbidden("the logout must come from the dashboard page"))
    sessions.drop(request.cookies.get(COOKIE))
    resp = JSONResponse({"ok": True})
    resp.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
    return _secure(resp)


async def _analyst(request: Request, fn, *args):
    """Storage work for the dashboard, one query at a time, off the event loop."""
    _, gate = _state(request)
    try:
        await asyncio.wait_for(gate.acquire(), timeout=60)
    except asyncio.TimeoutError:
        raise RateLimited("the dashboard's queries are queued; retry shortly", retry_after=2) from None
    try:
        return await asyncio.to_thread(fn, *args)
    finally:
        gate.release()


def _known_sites(svc) -> list[str]:
    """The configured sites and the sites the views know. ``events_daily`` has every site with an event
    (those of ``traffic_daily``, whose visits come from events too) without building any visit."""
    configured = [s.domain for s in getattr(svc.settings, "sites", ())]
    result = svc.store.run_sandboxed("SELECT DISTINCT site FROM events_daily ORDER BY site LIMIT 1000",
                                     "analyst", "JSONCompact")
    _, _, rows = decode_json_compact(result.body)
    return sorted({*configured, *(r[0] for r in rows if isinstance(r[0], str) and _SITE.match(r[0]))})


async def _sites(request: Request) -> list[str]:
    """``_known_sites``, read again at most every ``SITES_TTL_S``: every panel request validates its site
    against the list, and a page loads some thirty panels."""
    st, svc = request.app.state, request.app.state.collector
    cached = getattr(st, "dashboard_sites", None)
    if cached is not None and time.monotonic() - cached[0] < SITES_TTL_S:
        return cached[1]
    sites = await _analyst(request, _known_sites, svc)
    st.dashboard_sites = (time.monotonic(), sites)
    return sites


async def session(request: Request) -> Response:
    """Whether the session is valid, and what the pickers offer."""
    try:
        _authorized(request)
        svc = request.app.state.collector
        sites = await _sites(request)
        panels = [{"name": p.name, "title": p.title} for p in PANELS.values()]
        return _secure(JSONResponse({"sites": sites, "panels": panels, "today": dt.date.today().isoformat(),
                                     "min_group_visitors": getattr(svc.settings, "min_group_visitors", None),
                                     "data_sources": data_sources(svc.pipeline)}))
    except CollectorError as exc:
        return _error(exc)


def data_sources(pipeline) -> list[str]:
    """The credit each configured geography/ASN database gives for itself (its metadata's English
    description, e.g. DB-IP's "DB-IP.com - IP to City"): the licences of the free databases (CC BY 4.0)
    ask for it wherever their results are shown."""
    out = []
    for name in ("geo", "isp"):
        try:
            reader = pipeline.step(name).reader
        except StopIteration:
            continue
        if reader is None:
            continue
        meta = reader.metadata()
        text = (meta.description or {}).get("en") or meta.database_type
        if text and text not in out:
            out.append(str(text)[:600])
    return out


async def _params(request: Request) -> Params:
    sites = frozenset(await _sites(request))
    return parse_params(request.query_params, sites)


async def panel(request: Request) -> Response:
    """One panel as JSON: ``{panel, columns, types, rows, sql, ms}``."""
    try:
        _authorized(request)
        name = request.path_params["name"]
        if name not in PANELS:
            raise BadRequest(f"unknown panel {name!r}")
        p = await _params(request)
        store = request.app.state.collector.store
        t0 = time.perf_counter()
        sql, result = await _analyst(request, run_panel, store, name, p)
        ms = (time.perf_counter() - t0) * 1000
        cols, types, rows = decode_json_compact(result.body)
        return _secure(JSONResponse({"panel": name, "columns": cols, "types": types, "rows": rows, "sql": sql,
                                     "ms": round(ms, 1), "since": p.since.isoformat(), "until": p.until.isoformat()}))
    except CollectorError as exc:
        return _error(exc)


async def csv(request: Request) -> Response:
    """One panel as ClickHouse ``CSVWithNames``, as a download."""
    try:
        _authorized(request)
        name = request.path_params["name"]
        if name not in PANELS:
            raise BadRequest(f"unknown panel {name!r}")
        p = await _params(request)
        store = request.app.state.collector.store
        _, result = await _analyst(request, run_panel, store, name, p, "CSVWithNames")
        filename = f"{name}_{p.site}_{p.since.isoformat()}_{p.until.isoformat()}.csv"
        filename = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
        return _secure(Response(result.body, media_type="text/csv; charset=utf-8",
                                headers={"Content-Disposition": f'attachment; filename="{filename}"'}))
    except CollectorError as exc:
        return _error(exc)


def routes() -> list[Route]:
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/", page, methods=["GET"]),
        Route("/dashboard/login", login, methods=["POST"]),
        Route("/dashboard/logout", logout, methods=["POST"]),
        Route("/dashboard/api/session", session, methods=["GET"]),
        Route("/dashboard/api/panel/{name}", panel, methods=["GET"]),
        Route("/dashboard/api/csv/{name}", csv, methods=["GET"]),
        Route("/dashboard/{name}", asset, methods=["GET"]),
    ]
