// The automl dashboard's page: draws the runs list, one run or a comparison from the JSON endpoints,
// polling them so the page follows a search without a reload. Every value from a store is put into the
// page with textContent (never parsed as markup), so a config value like "<script>" shows as text.
"use strict";
(function () {
  const POLL_MS = 2000;
  const IMPORTANCE_EVERY_MS = 15000;
  const MAX_ROWS = 500;
  const STATUSES = ["completed", "stopped", "failed", "running", "pending", "paused"];
  const token = new URLSearchParams(location.search).get("token");

  function withToken(path) {
    if (!token) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  async function api(path) {
    let response;
    try {
      response = await fetch(withToken(path), { cache: "no-store" });
    } catch (e) {
      return { status: 0, body: { error: "the dashboard server does not answer (" + e.message + ")" } };
    }
    let body;
    try { body = await response.json(); } catch (e) { body = { error: "HTTP " + response.status }; }
    return { status: response.status, body: body };
  }

  // el("td", {className: "x"}, "text", childNode, ...): an element whose strings are text nodes.
  function el(tag, props) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of Array.prototype.slice.call(arguments, 2)) {
      if (child === null || child === undefined) continue;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  // A stopped trial's rung estimate of an engine metric (latency_ms_estimate) is marked as one, never shown as measured.
  function metricText(metrics, metric) {
    if (!metrics) return "-";
    if (metric in metrics || !((metric + "_estimate") in metrics)) return fmt(metrics[metric]);
    return "~" + fmt(metrics[metric + "_estimate"]) + " (estimate)";
  }

  function configText(config) {
    return Object.entries(config || {}).map(([k, v]) => k + "=" + fmt(v)).join(" ");
  }

  function when(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : "-"; }

  function banner(text) {
    const node = document.getElementById("banner");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function status(text) { document.getElementById("status-line").textContent = text; }

  function updated() { status("updated " + new Date().toLocaleTimeString() + ", every " + POLL_MS / 1000 + " s"); }

  function link(path, text) { return el("a", { href: withToken(path) }, text); }

  function plot(container, id, figure) {
    let div = document.getElementById(id);
    if (!div) { div = el("div", { id: id, className: "plot" }); container.appendChild(div); }
    Plotly.react(div, figure.data, figure.layout, { displaylogo: false, responsive: true });
  }

  function progress(summary) {
    const total = summary.planned;
    const done = summary.finished;
    const bar = el("span", { className: "progress" }, el("span"));
    bar.firstChild.style.width = total ? Math.min(100, (100 * done) / total) + "%" : "0";
    return el("span", {}, bar, total ? done + " / " + total + " trials" : done + " trials");
  }

  function counts(c) {
    return Object.entries(c || {}).sort().map(([s, n]) => n + " " + s).join(", ") || "no trials yet";
  }

  function best(b) {
    return b ? b.metric + " " + fmt(b.value) + " (trial " + b.number + ")" : "-";
  }

  function table(headers, rows) {
    const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
  }

  function mark(stamp) { document.body.dataset.stamp = stamp; document.body.dataset.ready = "1"; }

  // -- the runs list ---------------------------------------------------------------------------

  function runsView(view) {
    const chosen = new Set();
    const body = el("tbody", { id: "runs-body" });
    const compare = el("button", { id: "compare", disabled: true }, "compare selected runs");
    compare.onclick = () => { location.href = withToken("/compare?runs=" + Array.from(chosen).join(",")); };
    view.append(el("h1", {}, "Runs"), el("div", { className: "controls" }, compare),
      el("table", {}, el("thead", {}, el("tr", {}, ...["", "run", "status", "progress", "trials", "best",
        "front", "started", "store"].map((h) => el("th", {}, h)))), body));

    function row(r) {
      if (r.gone) return el("tr", { className: "gone" }, el("td"), el("td", {}, r.key), el("td", { colSpan: 7 }, r.gone));
      const box = el("input", { type: "checkbox", checked: chosen.has(r.key) });
      box.onchange = () => {
        if (box.checked) chosen.add(r.key); else chosen.delete(r.key);
        compare.disabled = chosen.size < 2;
      };
      const tr = el("tr", {}, el("td", {}, box), el("td", {}, link("/run/" + encodeURIComponent(r.key), r.name)),
        el("td", { className: "status-" + r.status }, r.status), el("td", {}, progress(r)), el("td", {}, counts(r.counts)),
        el("td", {}, best(r.best)), el("td", {}, String(r.front_size)), el("td", {}, when(r.created_at)),
        el("td", {}, r.directory || r.store));
      tr.dataset.key = r.key;
      return tr;
    }

    async function poll() {
      const { status: code, body: answer } = await api("/api/runs");
      if (code !== 200) { banner(answer.error || "HTTP " + code); } else {
        banner("");
        body.replaceChildren(...answer.map(row));
        mark(JSON.stringify(answer.map((r) => [r.key, r.counts, r.status])));
        updated();
      }
      setTimeout(poll, POLL_MS);
    }
    poll();
  }

  // -- one run ---------------------------------------------------------------------------------

  function trialsTable(container) {
    const state = { key: "number", dir: 1, status: "all", text: "", detail: null };
    const select = el("select", { id: "status-filter" }, el("option", { value: "all" }, "all statuses"),
      ...STATUSES.map((s) => el("option", { value: s }, s)));
    const search = el("input", { id: "text-filter", type: "search", placeholder: "filter config / error" });
    const note = el("span", { className: "note" });
    const wrap = el("div", { className: "scroll" });
    container.append(el("div", { className: "controls" }, select, search, note), wrap);
    select.onchange = () => { state.status = select.value; draw(); };
    search.oninput = () => { state.text = search.value.toLowerCase(); draw(); };

    function value(t, key) {
      if (key.startsWith("m:")) return t.metrics ? t.metrics[key.slice(2)] : null;
      if (key === "config") return configText(t.config);
      return t[key];
    }

    function compare(a, b) {
      const x = value(a, state.key), y = value(b, state.key);
      if (x === y) return a.number - b.number;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * state.dir;
    }

    function draw() {
      const d = state.detail;
      if (!d) return;
      const columns = [["number", "#"], ["status", "status"], ["budget", "budget"],
        ...d.summary.objectives.map((o) => ["m:" + o.metric, o.metric + " (" + o.mode + ")"]),
        ["duration", "seconds"], ["attempts", "attempts"], ["config", "config"], ["error", "error"]];
      const head = el("tr", {}, ...columns.map(([key, label]) => {
        const th = el("th", { className: "sortable" + (state.key === key ? (state.dir > 0 ? " sorted-asc" : " sorted-desc") : "") }, label);
        th.onclick = () => { state.dir = state.key === key ? -state.dir : 1; state.key = key; draw(); };
        return th;
      }));
      const rows = d.trials.filter((t) => (state.status === "all" || t.status === state.status) &&
        (!state.text || (configText(t.config) + " " + (t.error || "")).toLowerCase().includes(state.text)));
      rows.sort(compare);
      const body = el("tbody", { id: "trials-body" }, ...rows.slice(0, MAX_ROWS).map((t) => {
        const tr = el("tr", { className: t.front ? "front" : "" }, el("td", {}, String(t.number)),
          el("td", { className: "status-" + t.status }, t.status + (t.front ? " (front)" : "")),
          el("td", {}, (t.budget || 0) + "/" + (t.max_budget || "?")),
          ...d.summary.objectives.map((o) => el("td", {}, metricText(t.metrics, o.metric))),
          el("td", {}, fmt(t.duration)), el("td", {}, fmt(t.attempts)), el("td", {}, configText(t.config)),
          el("td", {}, t.error || ""));
        tr.dataset.number = t.number;
        return tr;
      }));
      note.textContent = rows.length > MAX_ROWS ? "showing " + MAX_ROWS + " of " + rows.length + " (sort or filter to see others)"
        : rows.length + " of " + d.trials.length + " trials";
      wrap.replaceChildren(el("table", { id: "trials" }, el("thead", {}, head), body));
    }

    return (detail) => { state.detail = detail; draw(); };
  }

  function runView(view, key) {
    const base = "/api/runs/" + encodeURIComponent(key);
    const title = el("h1", { id: "run-name" }, key);
    const summary = el("table", { className: "summary", id: "summary" });
    const sections = {};
    for (const [id, label] of [["history", "Optimisation history"], ["front", "Pareto front"],
      ["rungs", "Learning curves and early stopping"], ["importance", "Parameter importance"],
      ["parallel", "Parallel coordinates"], ["failures", "Failures"], ["trials", "Trials"]]) {
      sections[id] = el("section", { id: "section-" + id });
      view.append(el("h2", {}, label), sections[id]);
    }
    view.prepend(title, summary);
    const drawTrials = trialsTable(sections.trials);
    const notes = {};
    for (const id of ["history", "front", "rungs", "importance", "parallel", "failures"]) {
      notes[id] = el("p", { className: "note" });
      sections[id].appendChild(notes[id]);
    }
    let stamp = null, stopped = false, importanceAt = 0, importanceBusy = false;

    function drawSummary(d) {
      const s = d.summary;
      title.textContent = s.name;
      document.title = "automl: " + s.name;
      const rows = [["status", el("span", { className: "status-" + s.status }, s.status)], ["progress", progress(s)],
        ["trials", counts(s.counts)], ["objectives", s.objectives.map((o) => o.metric + " (" + o.mode + ")").join(", ")],
        ["best", best(s.best)], ["Pareto front", s.front_size + " trials" + (d.provisional ? " (provisional: the search has not ended)" : "")],
        ["directory", s.directory], ["store", s.store + " (run " + s.run_id + ")"]];
      if (d.setup) rows.splice(4, 0, ["trainer, searcher, scheduler", d.setup.trainer + ", " + d.setup.searcher + ", " + d.setup.scheduler]);
      if (d.constraints.length) rows.splice(4, 0, ["constraints", d.constraints.join(", ")]);
      summary.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v))),
        ...d.notes.map((n) => el("tr", {}, el("td", {}, "note"), el("td", { className: "note" }, n))));
    }

    function drawFront(d) {
      const f = d.figures;
      notes.front.textContent = f.pareto.length ? "" : "One objective: the front is the best trial.";
      f.pareto.forEach((fig, i) => plot(sections.front, "plot-pareto-" + i, fig));
      let frontTable = document.getElementById("front-table");
      const objectives = d.summary.objectives;
      const rows = d.front.map((m) => el("tr", {}, el("td", {}, String(m.number)),
        ...objectives.map((o) => el("td", {}, fmt(m.metrics[o.metric]))), el("td", {}, configText(m.config)),
        el("td", {}, m.model || "-")));
      const fresh = table(["#", ...objectives.map((o) => o.metric + " (" + o.mode + ")"), "config", "model"], rows);
      fresh.id = "front-table";
      if (frontTable) frontTable.replaceWith(fresh); else sections.front.appendChild(fresh);
    }

    function drawFailures(d) {
      notes.failures.textContent = d.failures.length ? "" : "No trial failed.";
      const old = document.getElementById("failures-table");
      const fresh = table(["reason", "trials", "count"], d.failures.map((g) =>
        el("tr", {}, el("td", {}, g.reason), el("td", {}, g.numbers.join(", ")), el("td", {}, String(g.count)))));
      fresh.id = "failures-table";
      if (old) old.replaceWith(fresh); else sections.failures.appendChild(fresh);
    }

    function drawFigure(id, figure, missing) {
      notes[id].textContent = figure ? "" : missing;
      if (figure) plot(sections[id], "plot-" + id, figure);
    }

    async function importance() {
      if (importanceBusy || Date.now() - importanceAt < IMPORTANCE_EVERY_MS) return;
      importanceBusy = true;
      const { status: code, body: answer } = await api(base + "/importance");
      importanceBusy = false;
      importanceAt = Date.now();
      if (code !== 200) { notes.importance.textContent = answer.error || answer.gone || "HTTP " + code; return; }
      drawFigure("importance", answer.figure, answer.note);
    }

    function draw(d) {
      drawSummary(d);
      drawFigure("history", d.figures.history, "No trial reported the primary objective yet.");
      drawFront(d);
      drawFigure("rungs", d.figures.rungs, "");
      notes.rungs.textContent = d.rung_note + (d.figures.rungs || d.max_budget <= 1 ? "" : " No trial has reported two steps yet.");
      drawFigure("parallel", d.figures.parallel, "Needs at least two completed trials with parameters.");
      drawFailures(d);
      drawTrials(d);
    }

    async function poll() {
      const { status: code, body: answer } = await api(base + (stamp ? "?since=" + encodeURIComponent(stamp) : ""));
      if (code === 410) {
        stopped = true;
        banner("This run was deleted while shown: " + answer.gone + ". The page no longer updates.");
        status("run deleted");
        document.body.dataset.gone = "1";
        return;
      }
      if (code !== 200) { banner(answer.error || "HTTP " + code); } else {
        banner("");
        if (!answer.unchanged) {
          draw(answer);
          stamp = answer.stamp;
          importanceAt = importanceAt && Date.now() - importanceAt < IMPORTANCE_EVERY_MS ? importanceAt : 0;
          importance();
        }
        mark(stamp);
        updated();
      }
      if (!stopped) setTimeout(poll, POLL_MS);
    }
    poll();
  }

  // -- runs side by side -----------------------------------------------------------------------

  function compareView(view, keys) {
    const body = el("tbody", { id: "compare-body" });
    const figures = el("section", { id: "compare-figures" });
    view.append(el("h1", {}, "Runs compared"),
      el("table", {}, el("thead", {}, el("tr", {}, ...["run", "status", "progress", "best", "front"].map((h) => el("th", {}, h)))), body),
      figures);

    async function poll() {
      const { status: code, body: answer } = await api("/api/compare?runs=" + keys.map(encodeURIComponent).join(","));
      if (code !== 200) { banner(answer.error || answer.gone || "HTTP " + code); } else {
        banner("");
        body.replaceChildren(...answer.runs.map((r) => el("tr", {}, el("td", {}, link("/run/" + encodeURIComponent(r.key), r.key + ": " + r.name)),
          el("td", { className: "status-" + r.status }, r.status), el("td", {}, progress(r)), el("td", {}, best(r.best)),
          el("td", {}, String(r.front_size)))));
        answer.figures.forEach((fig, i) => plot(figures, "plot-compare-" + i, fig));
        mark(JSON.stringify(answer.runs.map((r) => r.counts)));
        updated();
      }
      setTimeout(poll, POLL_MS);
    }
    poll();
  }

  const view = document.getElementById("view");
  const path = location.pathname;
  document.getElementById("home").href = withToken("/");
  if (path.startsWith("/run/")) runView(view, decodeURIComponent(path.slice("/run/".length)));
  else if (path === "/compare") {
    compareView(view, (new URLSearchParams(location.search).get("runs") || "").split(",").filter(Boolean));
  } else runsView(view);
})();
