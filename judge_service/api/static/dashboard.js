// judge-service dashboard: plain JS, every number fetched from the JSON report endpoints.
(function () {
  "use strict";

  const ROOT = document.body.dataset.root || "";
  const KEY_STORE = "judge-service.dashboard.key";
  const CUSTOM = "__custom__";
  const COLORS = { win: "#2f855a", tie: "#a0aec0", loss: "#c53030", band: "rgba(49, 130, 206, 0.18)", line: "#3182ce" };
  const PLOT_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const FONT = { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#2d3748" };

  const state = {
    key: null,
    experiments: [],
    current: null, // the selected experiment object
    generation: 0, // bumps on every experiment change; stale replies are dropped
    sliceGeneration: 0,
    cases: [],
  };

  const $ = (id) => document.getElementById(id);

  // ---------- formatting ----------
  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const DASH = "—";
  const fmtPct = (v, digits = 1) => (isNum(v) ? `${v.toFixed(digits)}%` : DASH);
  const fmtCi = (lo, hi, digits = 1) => (isNum(lo) && isNum(hi) ? `${lo.toFixed(digits)} – ${hi.toFixed(digits)}%` : DASH);
  const fmtP = (p) => (isNum(p) ? p.toPrecision(3) : DASH);
  const fmtFrac = (v) => (isNum(v) ? `${(100 * v).toFixed(1)}%` : DASH);
  const fmtNum = (v, digits = 2) => (isNum(v) ? v.toFixed(digits) : DASH);
  const fmtSigned = (v, digits = 2) => (isNum(v) ? `${v > 0 ? "+" : ""}${v.toFixed(digits)}` : DASH);
  const fmtInt = (v) => (isNum(v) ? String(v) : DASH);
  const fmtDiffCi = (lo, hi) => (isNum(lo) && isNum(hi) ? `${fmtSigned(lo)} to ${fmtSigned(hi)}` : DASH);
  const shortHash = (h) => (h ? String(h).slice(0, 12) : DASH);
  const fmtFracCi = (lo, hi) => (isNum(lo) && isNum(hi) ? fmtCi(100 * lo, 100 * hi) : DASH);
  const fmtSignedCi = (lo, hi, digits = 1) =>
    isNum(lo) && isNum(hi) ? `${fmtSigned(lo, digits)} to ${fmtSigned(hi, digits)}` : DASH;
  const parseTime = (iso) => {
    const date = iso ? new Date(iso) : null;
    return date && !Number.isNaN(date.getTime()) ? date : null;
  };
  // Timestamps are shown in UTC, to the second ("2025-01-31 03:00:12").
  const fmtTime = (iso) => {
    const date = parseTime(iso);
    return date ? date.toISOString().slice(0, 19).replace("T", " ") : iso ? String(iso) : DASH;
  };

  // ---------- DOM helpers (text only: nothing from the API is parsed as HTML) ----------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function cell(value, cls) {
    return el("td", { class: cls }, value);
  }

  function fillBody(table, rows) {
    const body = table.tBodies[0];
    body.replaceChildren(...rows);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setText(id, text, title) {
    const node = $(id);
    node.textContent = text;
    if (title !== undefined) node.title = title || "";
  }

  // ---------- errors and auth ----------
  class AuthError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function detailOf(body, fallback) {
    if (!body || body.detail === undefined) return fallback;
    const detail = body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => (d && typeof d === "object" ? [(d.loc || []).join("."), d.msg].filter(Boolean).join(": ") : String(d)))
        .join("; ");
    }
    return JSON.stringify(detail);
  }

  async function api(path, params) {
    const url = new URL(ROOT + path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.append(name, value);
    }
    let reply;
    try {
      reply = await fetch(url, { headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" } });
    } catch (err) {
      throw new HttpError(0, `cannot reach the service (${err.message})`);
    }
    let body = null;
    try {
      body = await reply.json();
    } catch (_) {
      body = null;
    }
    const message = detailOf(body, reply.statusText || `HTTP ${reply.status}`);
    if (reply.status === 401 || reply.status === 403) throw new AuthError(reply.status, message);
    if (!reply.ok) throw new HttpError(reply.status, message);
    return body;
  }

  function showError(message) {
    const banner = $("error-banner");
    banner.textContent = message;
    show(banner, true);
  }

  function clearError() {
    show($("error-banner"), false);
  }

  function showAuth(message) {
    show($("auth-panel"), true);
    show($("content"), false);
    show($("key-status"), false);
    show($("forget-key"), false);
    $("experiment-select").disabled = true;
    const note = $("auth-message");
    note.textContent = message || "";
    show(note, Boolean(message));
    $("api-key").value = "";
    $("api-key").focus();
  }

  function forgetKey(message) {
    state.key = null;
    state.generation += 1;
    sessionStorage.removeItem(KEY_STORE);
    clearError();
    showAuth(message);
  }

  // Every failed fetch ends here: a refused key is dropped and asked for again, the rest is shown.
  function handleError(err, what) {
    if (err instanceof AuthError) {
      forgetKey(`The key was refused (HTTP ${err.status}): ${err.message}. Enter a key with the read scope.`);
      return;
    }
    showError(`${what}: ${err.message}`);
  }

  // ---------- charts ----------
  function plot(id, data, layout) {
    const target = $(id);
    if (!window.Plotly) {
      target.replaceChildren(el("p", { class: "empty", text: "Charts unavailable: plotly.min.js could not be loaded." }));
      return;
    }
    const base = { font: FONT, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)" };
    window.Plotly.react(target, data, Object.assign(base, layout), PLOT_CONFIG);
  }

  function purge(id) {
    const target = $(id);
    if (window.Plotly) window.Plotly.purge(target);
    target.replaceChildren();
  }

  function resizeCharts() {
    if (!window.Plotly) return;
    for (const id of ["outcome-chart", "dimension-chart", "trend-chart", "rejudge-chart"]) {
      const node = $(id);
      if (node.data && node.offsetParent !== null) window.Plotly.Plots.resize(node);
    }
  }

  // ---------- experiments ----------
  async function start() {
    show($("auth-panel"), false);
    show($("key-status"), true);
    show($("forget-key"), true);
    clearError();
    let experiments;
    try {
      experiments = await api("/experiments");
    } catch (err) {
      handleError(err, "Loading experiments failed");
      return;
    }
    state.experiments = experiments;
    show($("content"), true);
    const select = $("experiment-select");
    select.replaceChildren(
      ...experiments.map((e) => el("option", { value: e.name, text: `${e.name} (${e.pairs} pairs)` }))
    );
    if (!experiments.length) {
      select.replaceChildren(el("option", { value: "", text: DASH }));
      select.disabled = true;
      showExperimentEmpty("No experiments yet: submit pairs with POST /judge/pairwise.");
      return;
    }
    select.disabled = false;
    const params = new URLSearchParams(window.location.search);
    const wanted = params.get("experiment");
    let chosen = experiments[experiments.length - 1];
    if (wanted) {
      const found = experiments.find((e) => e.name === wanted || String(e.id) === wanted);
      if (found) chosen = found;
      else showError(`No experiment named '${wanted}'; showing '${chosen.name}'.`);
    }
    const slice = params.get("slice");
    if (slice) setSliceKey(slice);
    select.value = chosen.name;
    selectExperiment(chosen.name, false);
  }

  function updateUrl() {
    const params = new URLSearchParams(window.location.search);
    if (state.current) params.set("experiment", state.current.name);
    const slice = currentSliceKey();
    if (slice) params.set("slice", slice);
    else params.delete("slice");
    window.history.replaceState(null, "", `${window.location.pathname}?${params.toString()}`);
  }

  function showExperimentEmpty(message) {
    const empty = $("experiment-empty");
    empty.textContent = message;
    show(empty, true);
    show($("tabs"), false);
    show($("overview-view"), false);
    show($("failures-view"), false);
  }

  function selectExperiment(name, clear = true) {
    if (clear) clearError();
    state.current = state.experiments.find((e) => e.name === name) || null;
    updateUrl();
    loadExperiment();
  }

  function resetPanels() {
    show($("experiment-empty"), false);
    show($("tabs"), true);
    activateTab(activeTab());
    for (const id of ["win-rate", "win-ci", "sign-p", "decisive", "models", "n-pairs", "incomplete", "rubric", "judge",
      "inconsistent", "failed", "position-consistency", "position-a", "judge-human"]) {
      setText(id, DASH);
    }
    setText("verdict", "");
    show($("warnings"), false);
    $("warning-list").replaceChildren();
    $("headline").setAttribute("aria-busy", "true");
    fillBody($("dimension-table"), []);
    purge("outcome-chart");
    show($("outcome-empty"), false);
    purge("dimension-chart");
    purge("trend-chart");
    show($("trend"), false);
    show($("agreement"), false);
    show($("human"), false);
    resetConsistency();
    resetRejudge();
    $("failure-list").replaceChildren();
    setText("failure-count", "");
    fillBody($("tag-counts"), []);
    show($("detail-body"), false);
    show($("detail-empty"), true);
  }

  async function loadExperiment() {
    const exp = state.current;
    if (!exp) return;
    const generation = ++state.generation;
    resetPanels();
    const fresh = () => generation === state.generation;
    let report;
    try {
      report = await api("/reports/win-rate", { experiment: exp.name });
    } catch (err) {
      if (!fresh()) return;
      if (err instanceof HttpError && err.status === 404) {
        showExperimentEmpty(
          `No results for '${exp.name}' yet (${exp.pairs} pairs, ${exp.judgments} judgments stored): ${err.message}`
        );
        return;
      }
      handleError(err, "Loading the win rate failed");
      return;
    }
    if (!fresh()) return;
    renderHeadline(report);
    renderDimensions(report.overall.per_dimension || []);
    loadSlices();
    loadFailures(exp, fresh);
    loadAgreement(exp, fresh);
    loadHuman(exp, fresh, report);
    loadTrend(exp, fresh);
    loadConsistency(exp, fresh);
    loadRejudge(exp, fresh);
  }

  // ---------- headline ----------
  // The report's conclusion is the only verdict shown (docs/statistics.md, "Conclusion").
  const CONCLUSIONS = {
    ft_better: ["FT is better than Base", "good"],
    base_better: ["Base is better than FT", "bad"],
    no_significant_difference: ["No significant difference between FT and Base", ""],
    not_enough_evidence: ["Not enough evidence to tell FT and Base apart", "unsure"],
  };

  function conclusionText(code) {
    return (CONCLUSIONS[code] || [code || DASH])[0];
  }

  function renderWarnings(warnings) {
    const list = $("warning-list");
    list.replaceChildren(
      ...warnings.map((w) =>
        el(
          "li",
          { "data-code": w.code, class: w.blocking ? "blocking" : null },
          el("code", { text: w.code }),
          el("span", { text: ` ${w.blocking ? "(blocks a conclusion) " : ""}${w.message}` })
        )
      )
    );
    show($("warnings"), warnings.length > 0);
  }

  function renderHeadline(report) {
    const o = report.overall;
    renderWarnings(o.warnings || []);
    setText("win-rate", fmtPct(o.win_rate));
    setText("win-ci", fmtCi(o.ci_low, o.ci_high));
    const d = o.decisive || {};
    setText("decisive", d.n ? `${fmtPct(d.ft_share)} of ${fmtInt(d.n)} ${fmtCi(d.wilson_low, d.wilson_high)}` : DASH);
    setText("sign-p", fmtP(d.sign_test_p));
    setText("models", `${report.base_model} → ${report.ft_model}`);
    setText("n-pairs", fmtInt(o.n_complete_pairs));
    setText("incomplete", fmtInt(o.incomplete_pairs));
    setText("rubric", [report.rubric || DASH, report.mode].filter(Boolean).join(" · "));
    setText("judge", `${report.judge_model || DASH} · ${shortHash(report.judge_fingerprint)}`, report.judge_fingerprint);
    setText("inconsistent", fmtInt(o.inconsistent));
    setText("failed", fmtInt(o.failed_judgments));
    setText("position-consistency", fmtFrac(o.position_consistency));
    setText("position-a", fmtFrac(o.position_a_rate));
    const verdict = $("verdict");
    const [text, cls] = CONCLUSIONS[o.conclusion] || [conclusionText(o.conclusion), ""];
    verdict.className = "verdict";
    if (cls) verdict.classList.add(cls);
    verdict.dataset.conclusion = o.conclusion || "";
    verdict.textContent = text;
    $("headline").setAttribute("aria-busy", "false");

    const decided = (o.wins || 0) + (o.ties || 0) + (o.losses || 0);
    const outcomeEmpty = $("outcome-empty");
    show(outcomeEmpty, decided === 0);
    show($("outcome-chart"), decided > 0);
    if (decided === 0) {
      const exp = state.current;
      outcomeEmpty.textContent = exp
        ? `No judged pairs yet (${exp.pairs} pairs, ${exp.judgments} judgments stored when the page loaded).`
        : "No judged pairs yet.";
      purge("outcome-chart");
      return;
    }
    const outcome = (name, value, color) => ({
      type: "bar",
      orientation: "h",
      name,
      y: ["pairs"],
      x: [value || 0],
      marker: { color },
      text: [value ? String(value) : ""],
      textposition: "inside",
      insidetextanchor: "middle",
      hovertemplate: `${name}: %{x}<extra></extra>`,
    });
    plot(
      "outcome-chart",
      [outcome("FT wins", o.wins, COLORS.win), outcome("Ties", o.ties, COLORS.tie), outcome("Base wins", o.losses, COLORS.loss)],
      {
        barmode: "stack",
        height: 96,
        margin: { l: 8, r: 8, t: 4, b: 4 },
        showlegend: true,
        legend: { orientation: "h", x: 0, y: -0.15, yanchor: "top", traceorder: "normal" },
        xaxis: { visible: false, range: [0, decided] },
        yaxis: { visible: false },
      }
    );
  }

  // ---------- per dimension ----------
  function renderDimensions(dims) {
    show($("dimension-empty"), !dims.length);
    show($("dimension-table"), dims.length > 0);
    fillBody(
      $("dimension-table"),
      dims.map((d) =>
        el(
          "tr",
          { "data-dimension": d.dimension },
          cell(d.dimension),
          cell(fmtInt(d.n), "num"),
          cell(fmtNum(d.base_mean), "num"),
          cell(fmtNum(d.ft_mean), "num"),
          cell(fmtSigned(d.diff), `num ${isNum(d.diff) ? (d.diff > 0 ? "pos" : d.diff < 0 ? "neg" : "") : ""}`),
          cell(fmtDiffCi(d.diff_ci_low, d.diff_ci_high), "num"),
          cell(fmtPct(d.win_rate), "num"),
          cell(conclusionText(d.conclusion), "conclusion")
        )
      )
    );
    const withDiff = dims.filter((d) => isNum(d.diff));
    show($("dimension-chart"), withDiff.length > 0);
    if (!withDiff.length) {
      purge("dimension-chart");
      return;
    }
    plot(
      "dimension-chart",
      [
        {
          type: "bar",
          x: withDiff.map((d) => d.dimension),
          y: withDiff.map((d) => d.diff),
          marker: { color: withDiff.map((d) => (d.diff >= 0 ? COLORS.win : COLORS.loss)) },
          error_y: {
            type: "data",
            symmetric: false,
            array: withDiff.map((d) => (isNum(d.diff_ci_high) ? d.diff_ci_high - d.diff : 0)),
            arrayminus: withDiff.map((d) => (isNum(d.diff_ci_low) ? d.diff - d.diff_ci_low : 0)),
            color: "#4a5568",
            thickness: 1.5,
            width: 6,
          },
          customdata: withDiff.map((d) => [fmtDiffCi(d.diff_ci_low, d.diff_ci_high), d.n]),
          hovertemplate: "%{x}: %{y:+.2f}<br>95% CI %{customdata[0]}<br>n %{customdata[1]}<extra></extra>",
        },
      ],
      {
        height: 260,
        margin: { l: 48, r: 12, t: 8, b: 48 },
        yaxis: { title: { text: "FT − Base" }, zeroline: true, zerolinecolor: "#718096", zerolinewidth: 1.5,
          gridcolor: "#edf2f7" },
        xaxis: { automargin: true },
        showlegend: false,
      }
    );
  }

  // ---------- slices ----------
  function currentSliceKey() {
    const choice = $("slice-by").value;
    if (choice === CUSTOM) return $("slice-custom").value.trim();
    return choice;
  }

  function addSliceKeys(keys) {
    const select = $("slice-by");
    const known = new Set(Array.from(select.options, (o) => o.value));
    const custom = select.querySelector(`option[value="${CUSTOM}"]`);
    for (const key of Array.from(keys).sort()) {
      if (!known.has(key)) {
        select.insertBefore(el("option", { value: key, text: key }), custom);
        known.add(key);
      }
    }
  }

  function setSliceKey(key) {
    addSliceKeys([key]);
    $("slice-by").value = key;
    syncSliceInputs();
  }

  function syncSliceInputs() {
    const custom = $("slice-by").value === CUSTOM;
    show($("slice-custom"), custom);
    show($("slice-apply"), custom);
  }

  async function loadSlices() {
    const exp = state.current;
    const key = currentSliceKey();
    const generation = ++state.sliceGeneration;
    const table = $("slice-table");
    const empty = $("slice-empty");
    fillBody(table, []);
    if (!exp || !key) {
      show(table, false);
      empty.textContent = "Choose a tag or metadata key to compare slices.";
      show(empty, true);
      return;
    }
    empty.textContent = `Loading slices by '${key}'…`;
    show(empty, true);
    show(table, false);
    let report;
    try {
      report = await api("/reports/win-rate", { experiment: exp.name, group_by: key });
    } catch (err) {
      if (generation !== state.sliceGeneration) return;
      empty.textContent = `No slices by '${key}'.`;
      handleError(err, "Loading slices failed");
      return;
    }
    if (generation !== state.sliceGeneration) return;
    const slices = report.slices || [];
    if (!slices.length) {
      empty.textContent = `No pairs have the key '${key}'.`;
      return;
    }
    show(empty, false);
    show(table, true);
    fillBody(
      table,
      slices.map((s) => {
        const value = s.value === null || s.value === undefined ? "(missing)" : String(s.value);
        return el(
          "tr",
          { "data-value": value },
          cell(value),
          cell(fmtInt(s.n_pairs), "num"),
          cell(fmtPct(s.win_rate), "num"),
          cell(fmtCi(s.ci_low, s.ci_high), "num"),
          cell(`${fmtInt(s.wins)} / ${fmtInt(s.ties)} / ${fmtInt(s.losses)}`, "num"),
          cell(conclusionText(s.conclusion))
        );
      })
    );
  }

  // ---------- checkpoints ----------
  async function loadTrend(exp, fresh) {
    const series = exp.metadata && exp.metadata.series;
    if (!series) return;
    show($("trend"), true);
    setText("trend-series", String(series));
    let report;
    try {
      report = await api("/reports/checkpoints", { series: String(series) });
    } catch (err) {
      if (fresh()) handleError(err, "Loading checkpoints failed");
      return;
    }
    if (!fresh()) return;
    const points = report.points || [];
    $("trend-chart").dataset.points = String(points.length);
    show($("trend-empty"), !points.length);
    fillBody(
      $("trend-table"),
      points.map((p) =>
        el(
          "tr",
          { "data-experiment": p.experiment, class: p.experiment === exp.name ? "current" : null },
          cell(String(p.checkpoint ?? DASH)),
          cell(p.experiment),
          cell(p.step === null || p.step === undefined ? DASH : String(p.step), "num"),
          cell(fmtInt(p.n_pairs), "num"),
          cell(fmtPct(p.win_rate), "num"),
          cell(fmtCi(p.ci_low, p.ci_high), "num"),
          cell(conclusionText(p.conclusion))
        )
      )
    );
    if (!points.length) {
      purge("trend-chart");
      return;
    }
    const numericSteps = points.every((p) => isNum(p.step));
    const x = points.map((p) => (numericSteps ? p.step : String(p.checkpoint)));
    const hasCi = points.every((p) => isNum(p.ci_low) && isNum(p.ci_high));
    const traces = [];
    if (hasCi) {
      traces.push(
        { x, y: points.map((p) => p.ci_high), mode: "lines", line: { width: 0 }, hoverinfo: "skip", showlegend: false },
        {
          x,
          y: points.map((p) => p.ci_low),
          mode: "lines",
          line: { width: 0 },
          fill: "tonexty",
          fillcolor: COLORS.band,
          name: "95% CI",
          hoverinfo: "skip",
        }
      );
    }
    traces.push({
      x,
      y: points.map((p) => p.win_rate),
      mode: "lines+markers",
      name: "FT win rate",
      line: { color: COLORS.line, width: 2 },
      marker: {
        size: points.map((p) => (p.experiment === exp.name ? 12 : 8)),
        color: points.map((p) => (p.experiment === exp.name ? "#2b6cb0" : COLORS.line)),
        line: { color: "#fff", width: 1 },
      },
      customdata: points.map((p) => [p.experiment, fmtCi(p.ci_low, p.ci_high), p.n_pairs]),
      hovertemplate: "%{customdata[0]}<br>win rate %{y:.1f}%<br>95% CI %{customdata[1]}<br>n %{customdata[2]}<extra></extra>",
    });
    plot("trend-chart", traces, {
      height: 280,
      margin: { l: 52, r: 12, t: 8, b: 44 },
      xaxis: {
        title: { text: numericSteps ? "step" : "checkpoint" },
        type: numericSteps ? "linear" : "category",
        range: numericSteps ? paddedRange(x) : undefined,
        gridcolor: "#edf2f7",
      },
      yaxis: { title: { text: "win rate (%)" }, range: [0, 100], gridcolor: "#edf2f7" },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 50, y1: 50, line: { color: "#a0aec0", dash: "dot", width: 1 } }],
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" },
    });
  }

  function paddedRange(values) {
    const low = Math.min(...values);
    const high = Math.max(...values);
    const pad = high > low ? (high - low) * 0.06 : Math.max(1, Math.abs(low) * 0.1);
    return [low - pad, high + pad];
  }

  // ---------- agreement ----------
  async function loadAgreement(exp, fresh) {
    let report;
    try {
      report = await api("/reports/agreement", { experiment: exp.name });
    } catch (err) {
      if (fresh()) handleError(err, "Loading agreement failed");
      return;
    }
    if (!fresh()) return;
    const sources = report.sources || [];
    show($("agreement"), sources.length > 0);
    if (!sources.length) return;
    const comparisons = report.comparisons || [];
    show($("agreement-empty"), !comparisons.length);
    fillBody(
      $("agreement-table"),
      comparisons.map((c) =>
        el(
          "tr",
          {},
          cell(c.a),
          cell(c.b),
          cell(fmtInt(c.n), "num"),
          cell(fmtFrac(c.agreement), "num"),
          cell(`${fmtFrac(c.agreement_without_ties)} (n ${fmtInt(c.n_without_ties)})`, "num"),
          cell(fmtNum(c.cohen_kappa, 3), "num")
        )
      )
    );
  }

  // ---------- human labels (labelling tasks) ----------
  async function loadHuman(exp, fresh, judgeReport) {
    let r;
    try {
      r = await api("/labeling/results", { experiment: exp.name });
    } catch (err) {
      if (fresh()) handleError(err, "Loading human labels failed");
      return;
    }
    if (!fresh() || !r.task) return;
    const overall = r.judge_vs_human.overall;
    setText("judge-human", `${fmtFrac(overall.agreement)} · κ ${fmtNum(overall.kappa, 3)} (n ${fmtInt(overall.n)})`);
    setText("human-task", r.task);
    setText("human-progress", `${r.progress.done} / ${r.progress.assignments}`);
    const human = r.human_win_rate ? r.human_win_rate.overall : null;
    setText("human-win-rate", human ? fmtPct(human.win_rate) : DASH);
    setText("human-win-ci", human ? fmtCi(human.ci_low, human.ci_high) : DASH);
    setText("human-judge-win-rate", fmtPct(judgeReport.overall.win_rate));
    setText("human-disagreements", fmtInt(r.disagreements.length));
    const keys = ["overall", ...r.dimensions];
    fillBody(
      $("human-agreement-table"),
      keys.map((key) => {
        const ir = r.inter_rater.verdicts[key] || {};
        const jh = r.judge_vs_human[key] || {};
        const method = ir.method === "cohen" ? "Cohen" : ir.method === "fleiss" ? "Fleiss" : DASH;
        return el(
          "tr",
          { "data-key": key },
          cell(key === "overall" ? "overall preference" : key),
          cell(method),
          cell(fmtInt(ir.n), "num"),
          cell(fmtFrac(ir.agreement), "num ir-agreement"),
          cell(fmtNum(ir.kappa, 3), "num ir-kappa"),
          cell(fmtInt(jh.n), "num"),
          cell(fmtFrac(jh.agreement), "num jh-agreement"),
          cell(fmtNum(jh.kappa, 3), "num jh-kappa")
        );
      })
    );
    const why = (reason) =>
      reason.kind === "judge_vs_humans"
        ? `judge says ${reason.judge}, raters ${reason.humans}`
        : `${reason.dimension} (${reason.answer}): ${Object.entries(reason.scores).map(([k, v]) => `${k} ${v}`).join(", ")}`;
    fillBody(
      $("human-disagreement-table"),
      r.disagreements.map((d) => el("tr", {}, cell(d.id), cell(d.human || DASH), cell(d.reasons.map(why).join("; "))))
    );
    show($("human"), true);
  }

  // ---------- consistency ----------
  const ORDER_SHORT = { base_first: "Base first", ft_first: "FT first" };
  const NEEDS_REPEATS = "judge with repeats > 1";

  function winnerPill(winner, title) {
    const cls = winner === "ft" ? "win" : winner === "base" ? "loss" : "tie";
    return el("span", { class: `pill ${cls}`, title, text: WINNER_NAMES[winner] || String(winner) });
  }

  function resetConsistency() {
    $("consistency").setAttribute("aria-busy", "true");
    for (const id of ["cons-position", "cons-bias", "cons-repeat", "cons-kappa"]) setText(id, DASH);
    for (const id of ["cons-position-note", "cons-bias-note", "cons-repeat-note", "cons-kappa-note"]) setText(id, "");
    $("cons-bias").classList.remove("bad");
    fillBody($("spread-table"), []);
    fillBody($("flip-table"), []);
    show($("consistency-empty"), false);
    show($("consistency-body"), true);
  }

  async function loadConsistency(exp, fresh) {
    let report;
    try {
      report = await api("/reports/consistency", { experiment: exp.name });
    } catch (err) {
      if (!fresh()) return;
      if (err instanceof HttpError && err.status === 404) {
        const empty = $("consistency-empty");
        empty.textContent = `No consistency data for '${exp.name}' yet: ${err.message}`;
        show(empty, true);
        show($("consistency-body"), false);
        $("consistency").setAttribute("aria-busy", "false");
        return;
      }
      handleError(err, "Loading consistency failed");
      return;
    }
    if (!fresh()) return;
    renderConsistency(report);
  }

  function renderConsistency(r) {
    setText("cons-position", fmtFrac(r.position_consistency));
    setText(
      "cons-position-note",
      isNum(r.position_consistency)
        ? `same winner in both orders · ${fmtInt(r.pairs_with_both_orders)} pairs, ${fmtInt(r.inconsistent_pairs)} inconsistent`
        : "judge in both orders to measure"
    );

    const bias = r.position_bias || {};
    const biasNode = $("cons-bias");
    setText("cons-bias", fmtFrac(bias.slot_a_rate));
    const leans = isNum(bias.ci_low) && bias.ci_low > 0.5 ? "A" : isNum(bias.ci_high) && bias.ci_high < 0.5 ? "B" : null;
    biasNode.classList.toggle("bad", Boolean(leans));
    setText(
      "cons-bias-note",
      `95% CI ${fmtFracCi(bias.ci_low, bias.ci_high)} · ${fmtInt(bias.decisive_verdicts)} decisive verdicts` +
        `${isNum(bias.pairs) ? ` in ${fmtInt(bias.pairs)} pairs (CI clustered by pair)` : ""}\n` +
        `50% = unbiased${leans ? ` · leans to slot ${leans}` : ""}`
    );

    const hasRepeats = isNum(r.repeat_agreement);
    setText("cons-repeat", fmtFrac(r.repeat_agreement));
    setText("cons-repeat-note", hasRepeats ? `${fmtInt(r.repeat_verdicts)} verdicts in repeated groups` : NEEDS_REPEATS);
    const hasKappa = isNum(r.repeat_fleiss_kappa);
    setText("cons-kappa", fmtNum(r.repeat_fleiss_kappa, 3));
    setText(
      "cons-kappa-note",
      hasKappa ? `${fmtInt(r.repeat_kappa_items)} items × ${fmtInt(r.repeats_per_item)} repeats` : NEEDS_REPEATS
    );

    const spread = Object.entries(r.score_spread || {});
    show($("spread-empty"), !spread.length);
    show($("spread-table"), spread.length > 0);
    fillBody(
      $("spread-table"),
      spread.map(([dimension, v]) =>
        el(
          "tr",
          { "data-dimension": dimension },
          cell(dimension),
          cell(fmtNum(v.base), "num"),
          cell(fmtNum(v.ft), "num"),
          cell(fmtInt(v.pairs), "num")
        )
      )
    );

    const flips = r.most_flipped || [];
    show($("flip-empty"), !flips.length);
    show($("flip-table"), flips.length > 0);
    fillBody(
      $("flip-table"),
      flips.map((f) => {
        const groups = new Map();
        for (const v of f.verdicts || []) {
          if (!groups.has(v.order)) groups.set(v.order, []);
          groups.get(v.order).push(v);
        }
        const sequence = el(
          "div",
          { class: "verdict-seq" },
          ...Array.from(groups, ([order, verdicts]) =>
            el(
              "span",
              { class: "verdict-group" },
              el("span", { class: "muted", text: `${ORDER_SHORT[order] || order}:` }),
              ...verdicts.map((v) => winnerPill(v.winner, `${ORDER_NAMES[order] || order}, repeat ${v.repeat}`))
            )
          )
        );
        return el(
          "tr",
          { "data-id": f.id },
          el("td", {}, el("code", { text: f.id })),
          cell(`${fmtFrac(f.flip_share)} of ${fmtInt(f.judgments)}`, "num"),
          el("td", {}, sequence)
        );
      })
    );
    $("consistency").setAttribute("aria-busy", "false");
  }

  // ---------- re-judge history ----------
  const ALERT_NAMES = {
    low_agreement: "Low test–retest agreement",
    win_rate_drift: "Win rate drift",
    fingerprint_changed: "Judge fingerprint changed",
  };
  const MAX_ALERTS = 8;

  function resetRejudge() {
    $("rejudge").setAttribute("aria-busy", "true");
    $("rejudge-alerts").replaceChildren();
    show($("rejudge-alerts"), false);
    show($("rejudge-empty"), false);
    show($("rejudge-body"), true);
    fillBody($("rejudge-table"), []);
    purge("rejudge-chart");
    delete $("rejudge-chart").dataset.points;
  }

  async function loadRejudge(exp, fresh) {
    let report;
    try {
      report = await api("/reports/rejudge", { experiment: exp.name });
    } catch (err) {
      if (!fresh()) return;
      if (err instanceof HttpError && err.status === 404) {
        renderRejudge({ runs: [], alerts: [] });
        return;
      }
      handleError(err, "Loading the re-judge history failed");
      return;
    }
    if (!fresh()) return;
    renderRejudge(report);
  }

  function renderRejudgeAlerts(report, runs) {
    // Stored alerts first; a report without them still shows what its runs raised.
    let alerts = report.alerts || [];
    if (!alerts.length) {
      alerts = runs.flatMap((r) =>
        (r.alerts || []).map((a) => ({ ...a, run_id: r.run_id, created_at: r.finished_at || r.created_at }))
      );
    }
    const newest = alerts.slice().reverse();
    const list = $("rejudge-alerts");
    const items = newest.slice(0, MAX_ALERTS).map((a) =>
      el(
        "li",
        { class: "alert", "data-kind": a.kind, "data-run": a.run_id },
        el("strong", { text: ALERT_NAMES[a.kind] || a.kind }),
        el("span", { class: "alert-message", text: a.message }),
        el("span", { class: "alert-meta", text: `run ${String(a.run_id || DASH).slice(0, 8)} · ${fmtTime(a.created_at)} UTC` })
      )
    );
    if (newest.length > MAX_ALERTS) {
      items.push(el("li", { class: "alert more", text: `… and ${newest.length - MAX_ALERTS} older alerts` }));
    }
    list.replaceChildren(...items);
    show(list, items.length > 0);
  }

  function winRateCell(w) {
    if (!w) return cell(DASH, "num");
    return el("td", { class: "num" }, fmtPct(w.win_rate), el("span", { class: "ci", text: fmtCi(w.ci_low, w.ci_high) }));
  }

  function renderRejudge(report) {
    const runs = report.runs || [];
    const minAgreement = isNum(report.min_agreement) ? report.min_agreement : null;
    renderRejudgeAlerts(report, runs);
    const empty = $("rejudge-empty");
    show(empty, !runs.length);
    show($("rejudge-body"), runs.length > 0);
    $("rejudge").setAttribute("aria-busy", "false");
    if (!runs.length) {
      empty.textContent = "No re-judge runs yet: create a schedule with POST /schedules (admin key), or fire one with POST /schedules/{id}/run.";
      purge("rejudge-chart");
      return;
    }
    fillBody(
      $("rejudge-table"),
      runs.map((r) => {
        const low = isNum(r.agreement) && minAgreement !== null && r.agreement < minAgreement;
        const change = r.win_rate_change;
        const changeCls = change && isNum(change.ci_low) && isNum(change.ci_high)
          ? change.ci_low > 0 ? "pos" : change.ci_high < 0 ? "neg" : "" : "";
        const alerts = (r.alerts || []).length;
        return el(
          "tr",
          { "data-run": r.run_id, class: r.fingerprint_changed ? "fingerprint-changed" : null },
          el("td", { class: "time", title: `run ${r.run_id}` }, fmtTime(r.created_at)),
          el(
            "td",
            { class: "status" },
            r.status === "done" ? "done" : el("span", { class: `pill ${r.status === "failed" ? "loss" : ""}`, text: r.status }),
            alerts ? el("span", { class: "pill loss", text: `${alerts} alert${alerts === 1 ? "" : "s"}`,
              title: (r.alerts || []).map((a) => a.message).join("\n") }) : null
          ),
          el("td", { class: "num", title: `${fmtInt(r.compared_pairs)} compared with the original verdicts` },
            fmtInt(r.sampled_pairs)),
          cell(fmtFrac(r.agreement), `num agreement ${low ? "neg strong" : ""}`),
          cell(fmtNum(r.cohen_kappa, 3), "num kappa"),
          winRateCell(r.original),
          winRateCell(r.rejudged),
          change
            ? el("td", { class: `num change ${changeCls}` }, fmtSigned(change.change, 1),
              el("span", { class: "ci", text: fmtSignedCi(change.ci_low, change.ci_high) }))
            : cell(DASH, "num change"),
          r.fingerprint_changed
            ? el("td", { class: "judge" }, el("span", {
              class: "flag",
              title: `${r.original_fingerprint || DASH} → ${r.rejudge_fingerprint || DASH}`,
              text: `⚠ FINGERPRINT CHANGED ${shortHash(r.original_fingerprint)} → ${shortHash(r.rejudge_fingerprint)}`,
            }))
            : el("td", { class: "judge muted", title: r.rejudge_fingerprint || "" }, `same · ${shortHash(r.rejudge_fingerprint)}`)
        );
      })
    );
    renderRejudgeChart(runs, minAgreement);
  }

  function renderRejudgeChart(runs, minAgreement) {
    const done = runs.filter((r) => r.status === "done" && isNum(r.agreement) && parseTime(r.created_at));
    const chart = $("rejudge-chart");
    chart.dataset.points = String(done.length);
    show(chart, done.length > 0);
    if (!done.length) {
      purge("rejudge-chart");
      return;
    }
    // Plotly reads "YYYY-MM-DD HH:MM:SS.sss" as a wall time: give it UTC.
    const x = done.map((r) => parseTime(r.created_at).toISOString().replace("T", " ").replace("Z", ""));
    const below = (r) => minAgreement !== null && r.agreement < minAgreement;
    const traces = [
      {
        x,
        y: done.map((r) => 100 * r.agreement),
        mode: "lines+markers",
        name: "test–retest agreement",
        line: { color: COLORS.line, width: 2 },
        marker: {
          size: 10,
          color: done.map((r) => (below(r) ? COLORS.loss : COLORS.line)),
          symbol: done.map((r) => (r.fingerprint_changed ? "diamond" : "circle")),
          line: { color: "#fff", width: 1 },
        },
        customdata: done.map((r) => [fmtNum(r.cohen_kappa, 3), r.compared_pairs, r.fingerprint_changed ? "CHANGED" : "same"]),
        hovertemplate:
          "%{x|%Y-%m-%d %H:%M:%S} UTC<br>agreement %{y:.1f}%<br>κ %{customdata[0]}<br>" +
          "%{customdata[1]} pairs · judge %{customdata[2]}<extra></extra>",
      },
    ];
    const shapes = [];
    const annotations = [];
    if (minAgreement !== null) {
      shapes.push({
        type: "line", xref: "paper", x0: 0, x1: 1, y0: 100 * minAgreement, y1: 100 * minAgreement,
        line: { color: COLORS.loss, dash: "dash", width: 1.5 },
      });
      annotations.push({
        xref: "paper", x: 1, xanchor: "right", y: 100 * minAgreement, yanchor: "bottom", showarrow: false,
        text: `alert below ${fmtFrac(minAgreement)}`, font: { color: COLORS.loss, size: 11 },
      });
    }
    plot("rejudge-chart", traces, {
      height: 240,
      margin: { l: 52, r: 12, t: 8, b: 40 },
      xaxis: { type: "date", gridcolor: "#edf2f7", title: { text: "re-judged at (UTC)" } },
      yaxis: { title: { text: "agreement" }, range: [0, 105], ticksuffix: "%", gridcolor: "#edf2f7" },
      shapes,
      annotations,
      showlegend: false,
    });
  }

  // ---------- failures ----------
  async function loadFailures(exp, fresh) {
    let report;
    try {
      report = await api("/reports/failures", { experiment: exp.name, limit: 20 });
    } catch (err) {
      if (fresh()) handleError(err, "Loading failure cases failed");
      return;
    }
    if (!fresh()) return;
    state.cases = report.cases || [];
    const tagKeys = new Set();
    for (const c of state.cases) for (const key of Object.keys(c.tags || {})) tagKeys.add(key);
    addSliceKeys(tagKeys);
    renderTagCounts(report.tag_counts || { base: {}, ft: {} });
    setText("failure-count", `(${state.cases.length})`);
    show($("failures-empty"), !state.cases.length);
    $("failure-list").replaceChildren(
      ...state.cases.map((c, index) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "case", "data-id": c.id, onclick: () => showCase(index) },
            el("span", { class: "case-head" },
              el("code", { text: c.id }),
              el("span", { class: `pill ${c.outcome}`, text: c.outcome }),
              el("span", { class: "muted", text: `score ${fmtNum(c.score)}` })),
            el("span", { class: "case-worst", text: c.worst_dimension
              ? `worst: ${c.worst_dimension} (${fmtSigned(c.worst_deficit)})` : "no dimension scores" }),
            el("span", { class: "case-prompt", text: c.prompt })
          )
        )
      )
    );
  }

  function renderTagCounts(counts) {
    const base = counts.base || {};
    const ft = counts.ft || {};
    const tags = Array.from(new Set([...Object.keys(base), ...Object.keys(ft)]))
      .filter((t) => (base[t] || 0) + (ft[t] || 0) > 0)
      .sort((a, b) => (base[b] || 0) + (ft[b] || 0) - ((base[a] || 0) + (ft[a] || 0)) || a.localeCompare(b));
    show($("tags-empty"), !tags.length);
    show($("tag-counts"), tags.length > 0);
    fillBody(
      $("tag-counts"),
      tags.map((t) => el("tr", { "data-tag": t }, cell(t), cell(String(base[t] || 0), "num"), cell(String(ft[t] || 0), "num")))
    );
  }

  const ORDER_NAMES = { base_first: "Base shown first (slot A)", ft_first: "FT shown first (slot A)" };
  const WINNER_NAMES = { base: "Base", ft: "FT", tie: "tie" };

  function showCase(index) {
    const c = state.cases[index];
    if (!c) return;
    for (const [i, node] of Array.from($("failure-list").querySelectorAll("button.case")).entries()) {
      node.classList.toggle("active", i === index);
      node.setAttribute("aria-pressed", i === index ? "true" : "false");
    }
    show($("detail-empty"), false);
    show($("detail-body"), true);
    setText("detail-id", c.id);
    const outcome = $("detail-outcome");
    outcome.textContent = c.outcome;
    outcome.className = `pill ${c.outcome}`;
    setText("detail-worst", c.worst_dimension ? `${c.worst_dimension} (${fmtSigned(c.worst_deficit)})` : DASH);
    setText("detail-prompt", c.prompt);
    show($("detail-reference-block"), Boolean(c.reference));
    setText("detail-reference", c.reference || "");
    setText("detail-base", c.base_output);
    setText("detail-ft", c.ft_output);
    const dims = Object.entries(c.dimensions || {}).map(([name, v]) => ({
      name,
      base: v.base,
      ft: v.ft,
      diff: isNum(v.base) && isNum(v.ft) ? v.ft - v.base : null,
    }));
    dims.sort((a, b) => (a.diff ?? 0) - (b.diff ?? 0) || a.name.localeCompare(b.name));
    fillBody(
      $("detail-dimensions"),
      dims.map((d) =>
        el(
          "tr",
          { class: d.name === c.worst_dimension ? "current" : null },
          cell(d.name),
          cell(fmtNum(d.base), "num"),
          cell(fmtNum(d.ft), "num"),
          cell(fmtSigned(d.diff), `num ${isNum(d.diff) ? (d.diff > 0 ? "pos" : d.diff < 0 ? "neg" : "") : ""}`)
        )
      )
    );
    const judgments = c.judgments || [];
    $("detail-judgments").replaceChildren(
      ...(judgments.length
        ? judgments.map((j) => {
          const tags = [
            (j.tags_base || []).length ? `Base: ${j.tags_base.join(", ")}` : null,
            (j.tags_ft || []).length ? `FT: ${j.tags_ft.join(", ")}` : null,
          ].filter(Boolean);
          return el(
            "li",
            { class: "judgment", "data-order": j.order },
            el("div", { class: "judgment-head" },
              el("strong", { text: ORDER_NAMES[j.order] || j.order }),
              el("span", { class: "muted", text: ` · repeat ${j.repeat} · winner ` }),
              el("span", { class: `pill ${j.winner === "ft" ? "win" : j.winner === "base" ? "loss" : "tie"}`,
                text: WINNER_NAMES[j.winner] || String(j.winner) })),
            el("p", { class: "rationale", text: j.rationale || "(no rationale recorded)" }),
            tags.length ? el("p", { class: "muted tags", text: `failure tags: ${tags.join(" · ")}` }) : null
          );
        })
        : [el("li", { class: "empty", text: "No completed judgments." })])
    );
  }

  // ---------- tabs ----------
  function activeTab() {
    const active = document.querySelector(".tab.active");
    return active ? active.id : "tab-overview";
  }

  function activateTab(id) {
    for (const tab of document.querySelectorAll(".tab")) {
      const on = tab.id === id;
      tab.classList.toggle("active", on);
      tab.setAttribute("aria-selected", on ? "true" : "false");
      show($(tab.dataset.view), on);
    }
    if (id === "tab-overview") window.requestAnimationFrame(resizeCharts);
  }

  // ---------- wiring ----------
  function init() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) {
        showAuth("Enter an API key with the read scope.");
        return;
      }
      state.key = key;
      sessionStorage.setItem(KEY_STORE, key);
      start();
    });
    $("forget-key").addEventListener("click", () => forgetKey("Key forgotten."));
    $("experiment-select").addEventListener("change", (event) => selectExperiment(event.target.value));
    $("slice-by").addEventListener("change", () => {
      syncSliceInputs();
      if ($("slice-by").value !== CUSTOM) {
        updateUrl();
        loadSlices();
      } else {
        $("slice-custom").focus();
      }
    });
    $("slice-form").addEventListener("submit", (event) => {
      event.preventDefault();
      updateUrl();
      loadSlices();
    });
    for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => activateTab(tab.id));

    state.key = sessionStorage.getItem(KEY_STORE);
    if (state.key) start();
    else showAuth("");
  }

  init();
})();
