// judge-service /label: blind A/B labelling, keyboard first. Plain JS; the only data source is
// /labeling/assignments (the caller's own blind assignments) and the only write is PUT of one assignment.
(function () {
  "use strict";

  const ROOT = document.body.dataset.root || "";
  const KEY_STORE = "judge-service.label.key";
  const SAVE_DELAY_MS = 400;
  const PREF_LABELS = { "1": "Answer 1", "2": "Answer 2", tie: "Tie" };

  const state = { key: null, items: [], dims: {}, index: 0, cursor: 0, timer: null, saving: Promise.resolve(), dirty: false };
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function setMessage(text) {
    $("message").textContent = text || "";
  }

  function setSaveState(text, error) {
    const node = $("save-state");
    node.textContent = text;
    node.classList.toggle("error", Boolean(error));
  }

  async function api(method, path, body) {
    const reply = await fetch(ROOT + path, {
      method,
      headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json", "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await reply.json();
    } catch (_) {
      data = null;
    }
    if (!reply.ok) {
      const d = data ? data.detail : undefined;
      const detail = d === undefined ? reply.statusText
        : typeof d === "string" ? d
        : Array.isArray(d) ? d.map((e) => (e && e.msg ? e.msg : JSON.stringify(e))).join("; ")
        : JSON.stringify(d);
      const err = new Error(`${reply.status}: ${detail}`);
      err.status = reply.status;
      throw err;
    }
    return data;
  }

  // ---------- auth ----------
  function showAuth(message) {
    show($("auth-panel"), true);
    show($("work"), false);
    show($("forget-key"), false);
    const node = $("auth-message");
    node.textContent = message || "";
    show(node, Boolean(message));
    $("api-key").value = "";
    $("api-key").focus();
  }

  async function start() {
    let queue;
    try {
      queue = await api("GET", "/labeling/assignments");
    } catch (err) {
      sessionStorage.removeItem(KEY_STORE);
      state.key = null;
      showAuth(err.status === 401 || err.status === 403 ? `Key refused (${err.message})` : `Loading failed (${err.message})`);
      return;
    }
    show($("auth-panel"), false);
    show($("forget-key"), true);
    state.items = queue.items;
    state.dims = Object.fromEntries(queue.tasks.map((t) => [t.id, t.dimensions]));
    if (!state.items.length) {
      show($("empty"), true);
      return;
    }
    show($("work"), true);
    const first = state.items.findIndex((i) => i.status !== "done");
    open(first < 0 ? 0 : first);
    updateProgress();
    if (first < 0) show($("finished"), true);
  }

  // ---------- the current item ----------
  const current = () => state.items[state.index];
  const dimsOf = (item) => state.dims[item.task] || [];

  // Cursor cells: each dimension for Answer 1 then Answer 2, row by row, then the preference.
  function cells(item) {
    const out = [];
    for (const d of dimsOf(item)) for (const slot of ["1", "2"]) out.push({ kind: "score", dim: d.key, slot });
    out.push({ kind: "pref" });
    return out;
  }

  function open(index) {
    state.index = index;
    const item = current();
    $("prompt").textContent = item.prompt;
    $("expected").textContent = item.expected || "";
    show($("expected-block"), Boolean(item.expected));
    $("answer-1").textContent = item.answer_1;
    $("answer-2").textContent = item.answer_2;
    $("comment").value = item.comment || "";
    $("answer-1").scrollTop = 0;
    $("answer-2").scrollTop = 0;
    const list = cells(item);
    const missing = list.findIndex((c) => !valueOf(item, c));
    state.cursor = missing < 0 ? list.length - 1 : missing;
    setMessage("");
    render();
  }

  function valueOf(item, c) {
    if (c.kind === "pref") return item.preference;
    return (item.scores[c.slot] || {})[c.dim];
  }

  function render() {
    const item = current();
    const list = cells(item);
    const rows = dimsOf(item).map((d) => {
      const tr = el("tr", {}, el("th", { class: "dim", title: d.description }, d.title, el("span", { class: "muted", text: d.description })));
      for (const slot of ["1", "2"]) {
        const idx = list.findIndex((c) => c.kind === "score" && c.dim === d.key && c.slot === slot);
        const value = (item.scores[slot] || {})[d.key];
        const chips = [1, 2, 3, 4, 5].map((n) => el("span", { class: `chip${value === n ? " on" : ""}`, text: String(n) }));
        const anchor = value ? el("span", { class: "anchor", text: d.anchors[value] || "" }) : null;
        tr.append(
          el("td", { class: `cell${idx === state.cursor ? " focus" : ""}`, "data-dim": d.key, "data-slot": slot },
            el("div", { class: "chips" }, ...chips, anchor))
        );
      }
      return tr;
    });
    $("score-table").tBodies[0].replaceChildren(...rows);
    const pref = $("pref-cell");
    pref.className = `cell${state.cursor === list.length - 1 ? " focus" : ""}`;
    pref.replaceChildren(
      el("div", { class: "chips" },
        ...["1", "2", "tie"].map((p) => el("span", { class: `chip${item.preference === p ? " on" : ""}`, "data-pref": p, text: PREF_LABELS[p] })))
    );
    $("position").textContent = `Pair ${state.index + 1} of ${state.items.length}`;
    $("strip").replaceChildren(
      ...state.items.map((it, i) =>
        el("span", { class: `dot ${it.status}${i === state.index ? " current" : ""}`, title: `Pair ${i + 1}: ${it.status}` }))
    );
  }

  function updateProgress(done) {
    const count = done !== undefined ? done : state.items.filter((i) => i.status === "done").length;
    $("progress").textContent = `${count} / ${state.items.length}`;
  }

  // ---------- saving ----------
  function scheduleSave() {
    state.dirty = true;
    setSaveState("unsaved…");
    clearTimeout(state.timer);
    state.timer = setTimeout(() => flush(), SAVE_DELAY_MS);
  }

  function flush() {
    clearTimeout(state.timer);
    if (!state.dirty) return state.saving;
    state.dirty = false;
    const item = current();
    const body = { scores: item.scores, preference: item.preference || null, comment: item.comment || null };
    state.saving = state.saving.then(async () => {
      setSaveState("saving…");
      try {
        const reply = await api("PUT", `/labeling/assignments/${encodeURIComponent(item.token)}`, body);
        item.status = reply.status;
        updateProgress(reply.done);
        setSaveState("saved ✓");
        render();
      } catch (err) {
        state.dirty = true;
        setSaveState(`not saved (${err.message})`, true);
      }
    });
    return state.saving;
  }

  async function go(index) {
    if (index < 0 || index >= state.items.length) return;
    await flush();
    show($("finished"), false);
    open(index);
  }

  function nextUnfinished() {
    const n = state.items.length;
    for (let step = 1; step <= n; step++) {
      const i = (state.index + step) % n;
      if (state.items[i].status !== "done") return i;
    }
    return -1;
  }

  async function submit() {
    const item = current();
    const list = cells(item);
    const missing = list.filter((c) => !valueOf(item, c));
    if (missing.length) {
      state.cursor = list.indexOf(missing[0]);
      setMessage(`${missing.length} missing: every dimension for both answers, and a preference.`);
      render();
      return;
    }
    state.dirty = true;
    await flush();
    if (item.status !== "done") return;
    const next = nextUnfinished();
    if (next < 0) {
      show($("finished"), true);
      render();
      return;
    }
    open(next);
  }

  // ---------- keyboard ----------
  function setValue(value) {
    const item = current();
    const list = cells(item);
    const c = list[state.cursor];
    if (c.kind === "pref") item.preference = value;
    else item.scores[c.slot] = { ...(item.scores[c.slot] || {}), [c.dim]: value };
    if (state.cursor < list.length - 1) state.cursor += 1;
    setMessage("");
    render();
    scheduleSave();
  }

  function moveCursor(delta) {
    const n = cells(current()).length;
    state.cursor = Math.max(0, Math.min(n - 1, state.cursor + delta));
    render();
  }

  function onKey(event) {
    if (!current() || $("work").hidden) return;
    if (event.target === $("comment")) {
      if (event.key === "Escape") {
        event.preventDefault();
        $("comment").blur();
      } else if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("comment").blur();
        submit();
      }
      return;
    }
    if (event.target instanceof HTMLInputElement || event.ctrlKey || event.metaKey || event.altKey) return;
    const c = cells(current())[state.cursor];
    const key = event.key;
    let handled = true;
    if (c.kind === "score" && /^[1-5]$/.test(key)) setValue(Number(key));
    else if (c.kind === "pref" && (key === "1" || key === "2")) setValue(key);
    else if (c.kind === "pref" && (key === "0" || key === "t")) setValue("tie");
    else if (key === "ArrowRight") moveCursor(1);
    else if (key === "ArrowLeft") moveCursor(-1);
    else if (key === "ArrowDown") moveCursor(2);
    else if (key === "ArrowUp") moveCursor(-2);
    else if (key === "Enter") submit();
    else if (key === "PageDown" || key === "n") go(state.index + 1);
    else if (key === "PageUp" || key === "p") go(state.index - 1);
    else if (key === "s") {
      const next = nextUnfinished();
      go(next < 0 ? (state.index + 1) % state.items.length : next);
    } else if (key === "c") $("comment").focus();
    else handled = false;
    if (handled) event.preventDefault();
  }

  function init() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) return;
      state.key = key;
      sessionStorage.setItem(KEY_STORE, key);
      start();
    });
    $("forget-key").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      window.location.reload();
    });
    $("comment").addEventListener("input", () => {
      current().comment = $("comment").value;
      scheduleSave();
    });
    document.addEventListener("keydown", onKey);
    window.addEventListener("beforeunload", () => flush());
    state.key = sessionStorage.getItem(KEY_STORE);
    if (state.key) start();
    else showAuth();
  }

  init();
})();
