/* The collector's dashboard: every figure is one panel endpoint (/dashboard/api/panel/NAME), which runs
   that panel's SQL over the analyst views as the analyst. No third-party code, no external requests. */
(function () {
  "use strict";

  var CARDS = [
    { title: "Pages", tabs: [["pages", "Top pages"], ["entry_pages", "Entry pages"], ["exit_pages", "Exit pages"]] },
    { title: "Sources", tabs: [["sources", "Sources"], ["referrers", "Referring sites"]] },
    { title: "Campaigns (UTM)", tabs: [["utm_sources", "Source"], ["utm_mediums", "Medium"], ["utm_campaigns", "Campaign"],
                                       ["utm_terms", "Term"], ["utm_contents", "Content"]] },
    { title: "Locations", tabs: [["countries", "Countries"], ["regions", "Regions"]] },
    { title: "Networks", tabs: [["isps", "ISPs"]] },
    { title: "Technology", tabs: [["devices", "Devices"], ["browsers", "Browsers"], ["browser_versions", "Browser versions"],
                                  ["os", "OS"], ["os_versions", "OS versions"], ["platforms", "Platforms"]] },
    { title: "Site searches", tabs: [["searches", "Search terms"]] },
    { title: "Links", tabs: [["outbound_links", "Outbound links"], ["downloads", "Downloads"]] },
    { title: "Custom events", tabs: [["events", "Events"], ["event_props", "Properties"]] },
    { title: "Goals", tabs: [["goals", "Goals"]] },
    { title: "Click stream", tabs: [["transitions", "Page to page"]] }
  ];
  var METRICS = { visitors: "Visitors", visits: "Visits", pageviews: "Pageviews", bounce_rate: "Bounce rate",
                  visit_duration_s: "Visit duration" };
  var TABLE_LIMIT = 10, CSV_LIMIT = 500, PARALLEL = 2;
  var SVG = "http://www.w3.org/2000/svg";

  var state = { site: "", since: "", until: "", compare: true, metric: "visitors", gen: 0, series: null,
                today: "", k: null, pending: 0 };

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    return e;
  }

  // -- dates -----------------------------------------------------------------------------------------
  function parseDay(s) { var p = s.split("-"); return new Date(Date.UTC(+p[0], +p[1] - 1, +p[2])); }
  function fmtDay(d) { return d.toISOString().slice(0, 10); }
  function addDays(s, n) { var d = parseDay(s); d.setUTCDate(d.getUTCDate() + n); return fmtDay(d); }
  function spanDays(a, b) { return Math.round((parseDay(b) - parseDay(a)) / 86400000) + 1; }
  function previous(since, until) { var n = spanDays(since, until); return [addDays(since, -n), addDays(until, -n)]; }

  // -- formatting ------------------------------------------------------------------------------------
  function fmtInt(v) { return Number(v).toLocaleString("en-US"); }
  function fmtPct(v) { return (Number(v) * 100).toFixed(1) + "%"; }
  function fmtDuration(v) {
    v = Math.round(Number(v));
    var h = Math.floor(v / 3600), m = Math.floor((v % 3600) / 60), s = v % 60;
    return h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
  }
  function fmtSeconds(v) { return Number(v).toFixed(1) + " s"; }
  function format(col, v) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number") return v === "" ? "(none)" : String(v);
    if (col === "bounce_rate" || col === "conversion_rate") return fmtPct(v);
    if (col === "visit_duration_s") return fmtDuration(v);
    if (col === "time_on_page_s") return fmtSeconds(v);
    if (col === "asn" || col === "level" || col === "suppressed") return String(v);
    return fmtInt(v);
  }
  window.collectorDashboardFormat = format;  // the tests format SQL answers the same way

  // -- requests --------------------------------------------------------------------------------------
  var queue = [], running = 0;
  function request(url) {
    return new Promise(function (resolve, reject) { queue.push([url, resolve, reject, 0]); pump(); });
  }
  function pump() {
    while (running < PARALLEL && queue.length) {
      var job = queue.shift();
      running++;
      fetch(job[0], { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (job) {
          return function (resp) {
            return resp.json().catch(function () { return { error: "bad_response", message: "HTTP " + resp.status }; })
              .then(function (body) {
                running--;
                if (resp.status === 401) { showLogin(); job[2](body); }
                else if (resp.status === 429 && job[3] < 5) {
                  job[3]++;
                  var wait = (parseInt(resp.headers.get("Retry-After") || "1", 10) || 1) * 1000;
                  setTimeout(function () { queue.unshift(job); pump(); }, wait);
                } else if (!resp.ok) job[2](body);
                else job[1](body);
                pump();
              });
          };
        }(job), function (job) {
          return function (err) { running--; job[2]({ error: "network", message: String(err) }); pump(); };
        }(job));
    }
  }
  function qs(since, until, limit, extra) {
    var p = new URLSearchParams();
    p.set("site", state.site); p.set("since", since); p.set("until", until); p.set("limit", String(limit));
    (extra || []).forEach(function (kv) { p.append(kv[0], kv[1]); });
    return p.toString();
  }
  function panelURL(name, since, until, limit, extra) {
    return "/dashboard/api/panel/" + name + "?" + qs(since, until, limit, extra);
  }
  function csvURL(name, extra) { return "/dashboard/api/csv/" + name + "?" + qs(state.since, state.until, CSV_LIMIT, extra); }

  function track(promise) {
    state.pending++;
    document.body.setAttribute("data-loading", String(state.pending));
    var done = function () {
      state.pending--;
      document.body.setAttribute("data-loading", String(state.pending));
      if (state.pending === 0) document.body.setAttribute("data-loaded", String(state.gen));
    };
    promise.then(done, done);
    return promise;
  }

  // -- login -----------------------------------------------------------------------------------------
  function showLogin(message) {
    $("dashboard").hidden = true; $("controls").hidden = true; $("login").hidden = false;
    document.body.setAttribute("data-view", "login");
    var err = $("login-error");
    if (message) { err.textContent = message; err.hidden = false; } else err.hidden = true;
    $("token").focus();
  }
  function login(ev) {
    ev.preventDefault();
    var token = $("token").value;
    $("token").value = "";
    fetch("/dashboard/login", { method: "POST", credentials: "same-origin",
                                headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
                                body: new URLSearchParams({ token: token }).toString() })
      .then(function (resp) {
        if (resp.ok) { start(); return; }
        return resp.json().then(function (b) { showLogin(b.message || "login failed"); },
                                function () { showLogin("login failed (HTTP " + resp.status + ")"); });
      }, function (err) { showLogin(String(err)); });
  }
  function logout() {
    fetch("/dashboard/logout", { method: "POST", credentials: "same-origin" }).then(function () { showLogin(); });
  }

  // -- start -----------------------------------------------------------------------------------------
  function start() {
    fetch("/dashboard/api/session", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (resp) {
        if (resp.status === 401) { showLogin(location.hash.indexOf("login-failed") >= 0 ? "that is not the analyst or admin token" : ""); return null; }
        return resp.json();
      })
      .then(function (s) {
        if (!s) return;
        $("login").hidden = true; $("controls").hidden = false; $("dashboard").hidden = false;
        document.body.setAttribute("data-view", "dashboard");
        state.today = s.today; state.k = s.min_group_visitors;
        $("k").textContent = state.k === null ? "k" : String(state.k);
        var credits = s.data_sources || [];
        $("sources-text").textContent = credits.join(" · ");
        $("sources").hidden = credits.length === 0;
        var sel = $("site"); sel.textContent = "";
        (s.sites || []).forEach(function (name) { var o = el("option", "", name); o.value = name; sel.appendChild(o); });
        var h = new URLSearchParams(location.hash.replace(/^#/, ""));
        if (h.get("site") && (s.sites || []).indexOf(h.get("site")) >= 0) sel.value = h.get("site");
        if (h.get("since") && h.get("until")) { $("preset").value = "custom"; $("since").value = h.get("since"); $("until").value = h.get("until"); }
        else applyPreset();
        refresh();
        if (!state.timer) state.timer = setInterval(realtime, 30000);
      });
  }
  function applyPreset() {
    var v = $("preset").value, t = state.today || fmtDay(new Date());
    if (v === "custom") return;
    if (v === "today") { $("since").value = t; $("until").value = t; }
    else if (v === "month") { $("since").value = t.slice(0, 8) + "01"; $("until").value = t; }
    else { $("since").value = addDays(t, -(parseInt(v, 10) - 1)); $("until").value = t; }
  }

  function refresh() {
    var since = $("since").value, until = $("until").value;
    if (!since || !until || until < since) { $("status").textContent = "Choose a valid date range."; return; }
    state.site = $("site").value; state.since = since; state.until = until; state.compare = $("compare").checked;
    state.gen++;
    document.body.removeAttribute("data-loaded");
    history.replaceState(null, "", "#" + new URLSearchParams({ site: state.site, since: since, until: until }).toString());
    var prev = previous(since, until);
    $("status").textContent = state.site + ", " + since + " to " + until + (state.compare ? " (compared with " + prev[0] + " to " + prev[1] + ")" : "");
    headline(prev); chart(prev); realtime();
    document.querySelectorAll("[data-card-tabs]").forEach(function (card) { loadTab(card); });
    funnel();
  }

  // -- headline numbers and the chart --------------------------------------------------------------------
  function headline(prev) {
    var gen = state.gen;
    var cur = track(request(panelURL("summary", state.since, state.until, 1)));
    var old = state.compare ? track(request(panelURL("summary", prev[0], prev[1], 1))) : Promise.resolve(null);
    Promise.all([cur, old]).then(function (res) {
      if (gen !== state.gen) return;
      var c = rowObject(res[0]), p = res[1] ? rowObject(res[1]) : null;
      Object.keys(METRICS).forEach(function (m) {
        var v = $("h-" + m), d = $("d-" + m);
        v.textContent = format(m, c[m]); v.setAttribute("data-value", String(c[m]));
        d.textContent = ""; d.className = "delta"; d.removeAttribute("data-value");
        if (p) {
          d.setAttribute("data-previous", String(p[m]));
          if (p[m] > 0) {
            var ch = (c[m] - p[m]) / p[m];
            d.textContent = (ch >= 0 ? "▲ " : "▼ ") + Math.abs(ch * 100).toFixed(1) + "%";
            var good = m === "bounce_rate" ? ch <= 0 : ch >= 0;
            d.className = "delta " + (good ? "good" : "bad");
            d.title = "previous period: " + format(m, p[m]);
          } else d.textContent = "no previous data";
        }
      });
    }, function (err) { if (gen === state.gen) $("status").textContent = "Headline figures: " + (err.message || err.error); });
  }
  function rowObject(res) {
    var o = {};
    res.columns.forEach(function (c, i) { o[c] = res.rows.length ? res.rows[0][i] : 0; });
    return o;
  }

  function chart(prev) {
    var gen = state.gen, hourly = state.since === state.until, name = hourly ? "hourly" : "daily";
    $("chart-csv").href = csvURL(name);
    var cur = track(request(panelURL(name, state.since, state.until, CSV_LIMIT)));
    var old = state.compare ? track(request(panelURL(name, prev[0], prev[1], CSV_LIMIT))) : Promise.resolve(null);
    Promise.all([cur, old]).then(function (res) {
      if (gen !== state.gen) return;
      state.series = { hourly: hourly, cur: slots(res[0], state.since, state.until, hourly),
                       prev: res[1] ? slots(res[1], prev[0], prev[1], hourly) : null };
      drawChart();
    }, function (err) { if (gen === state.gen) $("chart").textContent = err.message || err.error; });
  }
  // one slot per day (or hour) of the range, zeros where the view has no row
  function slots(res, since, until, hourly) {
    var key = res.columns[0], by = {};
    res.rows.forEach(function (r) {
      var o = {}; res.columns.forEach(function (c, i) { o[c] = r[i]; });
      by[String(o[key]).slice(0, hourly ? 13 : 10)] = o;
    });
    var out = [];
    if (hourly) {
      for (var h = 0; h < 24; h++) { var k = since + " " + (h < 10 ? "0" : "") + h; out.push({ label: k + ":00", row: by[k] || null }); }
    } else {
      for (var d = since; d <= until; d = addDays(d, 1)) out.push({ label: d, row: by[d] || null });
    }
    return out;
  }
  function drawChart() {
    var s = state.series, m = state.metric, box = $("chart");
    $("chart-title").textContent = METRICS[m] + (s && s.hourly ? " per hour" : " per day");
    box.textContent = "";
    if (!s) return;
    var W = 960, H = 260, L = 56, R = 12, T = 12, B = 34;
    var val = function (p) { return p.row ? Number(p.row[m]) : 0; };
    var all = s.cur.map(val).concat(s.prev ? s.prev.map(val) : []);
    var max = Math.max.apply(null, all.concat([0]));
    var nice = niceMax(max);
    var n = s.cur.length, x = function (i) { return L + (n <= 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1)); };
    var y = function (v) { return T + (H - T - B) * (1 - (nice ? v / nice : 0)); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": METRICS[m] + " over time", "class": "chart-svg" });
    for (var t = 0; t <= 4; t++) {
      var v = nice * t / 4, yy = y(v);
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, "class": "grid-line" }));
      var lab = svg("text", { x: L - 6, y: yy + 4, "text-anchor": "end", "class": "axis" });
      lab.textContent = format(m, m === "bounce_rate" || m === "visit_duration_s" ? v : Math.round(v));
      root.appendChild(lab);
    }
    var step = Math.max(1, Math.ceil(n / 8));
    s.cur.forEach(function (p, i) {
      if (i % step) return;
      var lab = svg("text", { x: x(i), y: H - 12, "text-anchor": "middle", "class": "axis" });
      lab.textContent = s.hourly ? p.label.slice(11, 16) : p.label.slice(5);
      root.appendChild(lab);
    });
    function line(points, cls) {
      if (!points) return;
      var d = points.map(function (p, i) { return (i ? "L" : "M") + x(i).toFixed(1) + " " + y(val(p)).toFixed(1); }).join(" ");
      if (cls === "cur" && points.length > 1) {
        root.appendChild(svg("path", { d: d + " L" + x(points.length - 1).toFixed(1) + " " + y(0) + " L" + x(0) + " " + y(0) + " Z", "class": "area" }));
      }
      root.appendChild(svg("path", { d: d, "class": "line " + cls }));
    }
    line(s.prev, "prev");
    line(s.cur, "cur");
    s.cur.forEach(function (p, i) {
      var c = svg("circle", { cx: x(i), cy: y(val(p)), r: n > 60 ? 2 : 3.5, "class": "point", "data-label": p.label, "data-value": String(val(p)) });
      var tip = svg("title", {});
      var prevText = s.prev && s.prev[i] ? " (previous: " + s.prev[i].label + " " + format(m, val(s.prev[i])) + ")" : "";
      tip.textContent = p.label + ": " + format(m, val(p)) + prevText;
      c.appendChild(tip);
      root.appendChild(c);
    });
    box.appendChild(root);
  }
  function niceMax(v) {
    if (v <= 0) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(v))), f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e;
  }

  // -- the realtime counter ----------------------------------------------------------------------------
  function realtime() {
    if (!state.site) return;
    var target = $("realtime-value");
    request(panelURL("realtime", state.today || state.until, state.today || state.until, 1)).then(function (res) {
      var o = rowObject(res);
      target.setAttribute("data-value", String(o.visitors));
      target.setAttribute("data-suppressed", String(o.suppressed));
      target.textContent = o.suppressed ? "< " + (state.k || "k") : fmtInt(o.visitors);
      $("realtime").title = o.suppressed ? "fewer than " + (state.k || "k") + " visitors or networks in the last 5 minutes"
                                         : o.visitors + " visitors, " + o.pageviews + " pageviews in the last 5 minutes";
    }, function () { target.textContent = "?"; });
  }

  // -- panels ----------------------------------------------------------------------------------------
  function buildCards() {
    var grid = $("panels");
    CARDS.forEach(function (spec) {
      var card = el("section", "card"), head = el("div", "card-head");
      card.setAttribute("data-card-tabs", spec.tabs.map(function (t) { return t[0]; }).join(","));
      card.setAttribute("data-active", spec.tabs[0][0]);
      head.appendChild(el("h2", "", spec.title));
      var csv = el("a", "csv", "CSV"); csv.href = "#"; csv.setAttribute("download", ""); csv.setAttribute("data-csv", spec.tabs[0][0]);
      if (spec.tabs.length > 1) {
        var tabs = el("div", "tabs");
        spec.tabs.forEach(function (t, i) {
          var b = el("button", i ? "tab" : "tab selected", t[1]); b.type = "button"; b.setAttribute("data-tab", t[0]);
          b.addEventListener("click", function () {
            tabs.querySelectorAll(".tab").forEach(function (x) { x.classList.toggle("selected", x === b); });
            card.setAttribute("data-active", t[0]);
            loadTab(card);
          });
          tabs.appendChild(b);
        });
        head.appendChild(tabs);
      }
      head.appendChild(csv);
      card.appendChild(head);
      var body = el("div", "panel-body"); body.setAttribute("data-panel", spec.tabs[0][0]);
      card.appendChild(body);
      grid.appendChild(card);
    });
  }
  function loadTab(card) {
    var name = card.getAttribute("data-active"), body = card.querySelector(".panel-body"), csv = card.querySelector("a.csv");
    body.setAttribute("data-panel", name);
    csv.setAttribute("data-csv", name);
    csv.href = csvURL(name);
    loadPanel(name, body, []);
  }
  function loadPanel(name, body, extra) {
    var gen = state.gen;
    body.setAttribute("data-state", "loading");
    body.setAttribute("data-gen", String(gen));
    return track(request(panelURL(name, state.since, state.until, TABLE_LIMIT, extra))).then(function (res) {
      if (gen !== state.gen || body.getAttribute("data-panel") !== name) return;
      renderTable(body, res);
      body.setAttribute("data-state", "ready");
    }, function (err) {
      if (gen !== state.gen) return;
      body.textContent = "";
      body.appendChild(el("p", "error", err.message || err.error || "failed"));
      body.setAttribute("data-state", "error");
    });
  }
  function renderTable(body, res) {
    body.textContent = "";
    body.setAttribute("data-rows", String(res.rows.length));
    body.setAttribute("data-ms", String(res.ms));
    if (!res.rows.length) { body.appendChild(el("p", "muted empty", "No data in this range.")); return; }
    var numeric = res.types.map(function (t, i) {
      return /^(Nullable\()?(U?Int|Float|Decimal)/.test(t) && ["asn", "level"].indexOf(res.columns[i]) < 0;
    });
    var dims = numeric.indexOf(true); if (dims < 0) dims = res.columns.length;
    var measure = dims < res.columns.length ? dims : -1;
    var max = 0;
    if (measure >= 0) res.rows.forEach(function (r) { max = Math.max(max, Number(r[measure]) || 0); });
    var table = el("table", "data"), thead = el("thead"), tr = el("tr");
    res.columns.forEach(function (c, i) { tr.appendChild(el("th", numeric[i] && i >= dims ? "num" : "", c.replace(/_/g, " "))); });
    thead.appendChild(tr); table.appendChild(thead);
    var tbody = el("tbody");
    res.rows.forEach(function (r) {
      var row = el("tr");
      r.forEach(function (v, i) {
        var td = el("td", numeric[i] && i >= dims ? "num" : "", format(res.columns[i], v));
        td.setAttribute("data-value", String(v));
        td.setAttribute("data-col", res.columns[i]);
        if (i === 0 && measure >= 0 && max > 0) {
          var bar = el("span", "bar"), text = el("span", "t", td.textContent);
          bar.style.width = (100 * (Number(r[measure]) || 0) / max).toFixed(1) + "%";
          td.textContent = ""; td.classList.add("has-bar"); td.appendChild(bar); td.appendChild(text);
        }
        row.appendChild(td);
      });
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
    body.appendChild(table);
    var sql = el("details", "sql"), sum = el("summary", "", "SQL");
    sql.appendChild(sum); sql.appendChild(el("pre", "", res.sql));
    body.appendChild(sql);
  }

  // -- the funnel --------------------------------------------------------------------------------------
  function funnelSteps() {
    return $("funnel-steps").value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean).slice(0, 8);
  }
  function funnel(ev) {
    if (ev) ev.preventDefault();
    if (!state.site) return;
    var steps = funnelSteps(), body = document.querySelector('[data-panel="funnel"]');
    var extra = steps.map(function (s) { return ["step", s]; });
    document.querySelector('a[data-csv="funnel"]').href = csvURL("funnel", extra);
    if (!steps.length) { body.textContent = "Add at least one step."; return; }
    loadPanel("funnel", body, extra).then(function () {
      if (body.getAttribute("data-state") !== "ready") return;
      // a bar per level, relative to level 1
      body.querySelectorAll("tbody tr").forEach(function (tr) {
        var rate = tr.querySelector('[data-col="conversion_rate"]'), sup = tr.querySelector('[data-col="suppressed"]');
        if (sup && sup.getAttribute("data-value") === "1") tr.classList.add("suppressed");
        if (rate) tr.title = "reached by " + rate.textContent + " of the visits at step 1";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    buildCards();
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("apply").addEventListener("click", refresh);
    $("preset").addEventListener("change", function () { applyPreset(); refresh(); });
    $("site").addEventListener("change", refresh);
    $("compare").addEventListener("change", refresh);
    ["since", "until"].forEach(function (id) { $(id).addEventListener("change", function () { $("preset").value = "custom"; }); });
    $("funnel-form").addEventListener("submit", funnel);
    document.querySelectorAll(".metric").forEach(function (b) {
      b.addEventListener("click", function () {
        state.metric = b.getAttribute("data-metric");
        document.querySelectorAll(".metric").forEach(function (x) { x.classList.toggle("selected", x === b); });
        drawChart();
      });
    });
    start();
  });
})();
