// The Items tab: reads the JSON endpoints of its own app and renders them. Every text that came
// from items (labels, errors) goes into the page with textContent, never as HTML.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("iterate-config").textContent);
  const content = document.getElementById("content");
  const notice = document.getElementById("notice");
  const updated = document.getElementById("updated");
  const polling = document.getElementById("polling");
  const FAILED_PAGE = 25;
  const state = { offset: 0, search: "", timer: null, stopped: false, busy: false, armed: false, rerunMessage: "", rerunError: false };

  // ---- helpers ------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "className") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const seg = (s) => encodeURIComponent(s);
  const rate = (r) => (r === null || r === undefined ? "–" : r >= 100 ? fmt(Math.round(r)) : Number(r).toFixed(1));

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return `${seconds}s`;
    const m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
    const h = Math.floor(m / 60);
    return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  }

  function since(iso) {
    const then = Date.parse(iso);
    return Number.isNaN(then) ? "–" : duration((Date.now() - then) / 1000);
  }

  function tiPath() {
    return `${seg(config.dag_id)}/${seg(config.run_id)}/${seg(config.task_id)}/${config.map_index}`;
  }

  function showNotice(text, kind) {
    notice.hidden = !text;
    notice.className = `notice ${kind || ""}`;
    notice.textContent = text || "";
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok) return response.json();
    let detail = "";
    try {
      detail = (await response.json()).detail;
    } catch (e) {
      /* not JSON */
    }
    const error = new Error(typeof detail === "string" ? detail : response.statusText);
    error.status = response.status;
    throw error;
  }

  function explain(error) {
    if (error.status === 401) return "Your Airflow session has ended: reload the page to log in again.";
    if (error.status === 403)
      return "You may not read these items: that needs read access to this DAG's task instances and XComs.";
    if (error.status === 404) return `Not found: ${error.message}`;
    return `Could not load the items: ${error.message || error}`;
  }

  function progressBar(total, counts) {
    const bar = el("div", { className: "progress", id: "progress", role: "img" });
    const known = total || counts.done + counts.in_flight || 1;
    const parts = [
      ["bar-succeeded", counts.succeeded + (counts.resumed || 0)],
      ["bar-failed", counts.failed],
      ["bar-running", counts.in_flight],
    ];
    for (const [className, value] of parts) {
      if (!value) continue;
      const part = el("span", { className });
      part.style.width = `${Math.min(100, (100 * value) / known)}%`;
      bar.append(part);
    }
    const done = total ? `${((100 * counts.done) / total).toFixed(1)}% done` : `${fmt(counts.done)} done`;
    bar.setAttribute("aria-label", done);
    return bar;
  }

  function countsGrid(total, counts) {
    const cells = [
      ["total", "Items", total],
      ["done", "Done", counts.done],
      ["succeeded", "Succeeded", counts.succeeded],
      ["failed", "Failed", counts.failed],
      ["in_flight", "In flight", counts.in_flight],
      ["resumed", "Reused", counts.resumed],
      ["retried", "Retries", counts.retried],
    ];
    return el(
      "dl",
      { className: "counts", id: "counts" },
      cells.map(([key, label, value]) =>
        el("div", { className: `count count-${key}`, "data-count": key }, el("dt", { text: label }), el("dd", { text: fmt(value) })),
      ),
    );
  }

  function table(id, headers, rows, empty) {
    if (!rows.length) return el("p", { className: "muted", id, text: empty });
    return el(
      "table",
      { id },
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { text: h })))),
      el("tbody", {}, rows),
    );
  }

  // ---- a task instance ----------------------------------------------------------------------

  function stateLine(data) {
    const ti = data.task_instance;
    const ledger = data.ledger;
    const bits = [`Try ${ti.try_number}`, `task instance ${ti.state || "cleared, not scheduled yet"}`];
    if (ledger) {
      bits.push(`items ${ledger.state}`);
      if (ledger.operator) bits.push(`each item runs ${ledger.operator}`);
      if (ledger.chunk) bits.push(`chunk of items ${fmt(ledger.chunk.start)}–${fmt(ledger.chunk.stop - 1)}`);
    }
    return bits.join(" · ");
  }

  function summarySection(data) {
    const ledger = data.ledger;
    const counts = ledger.counts;
    const total = ledger.total;
    const section = el("section", { id: "summary" });
    section.append(countsGrid(total, counts), progressBar(total, counts));
    const pct = total ? ` (${((100 * counts.done) / total).toFixed(1)}%)` : "";
    const running = ledger.state === "running";
    const facts = [
      el("span", { id: "done-line", text: `${fmt(counts.done)} of ${total === null ? "?" : fmt(total)} done${pct}` }),
      el("span", { id: "rate", text: `${rate(ledger.rate)} items/s` }),
      running ? el("span", { id: "eta", text: `about ${duration(ledger.eta_seconds)} left` }) : null,
      ledger.adaptive
        ? el("span", { id: "limit", text: `concurrency auto: ${fmt(ledger.concurrency)} at a time now` + (counts.overloaded ? `, ${fmt(counts.overloaded)} overloaded attempt(s) put back` : "") })
        : el("span", { text: `up to ${fmt(ledger.concurrency)} at a time` }),
      el("span", { text: `started ${new Date(ledger.started_at).toLocaleString()}` }),
    ];
    section.append(el("p", { className: "facts" }, facts.filter(Boolean).flatMap((f, i) => (i ? [" · ", f] : [f]))));
    return section;
  }

  function inFlightSection(ledger) {
    const rows = (ledger.in_flight || []).map((item) =>
      el(
        "tr",
        { className: "running-row" },
        el("td", { className: "num", text: fmt(item.index) }),
        el("td", { className: "label", text: item.label }),
        el("td", { className: "num", text: item.attempt }),
        el("td", { className: "num", title: item.running_since, text: since(item.running_since) }),
      ),
    );
    const more = ledger.counts.in_flight > (ledger.in_flight_listed || 0) ? ` (the first ${ledger.in_flight_listed} listed)` : "";
    return el(
      "section",
      { id: "in-flight" },
      el("h2", { text: `In flight: ${fmt(ledger.counts.in_flight)}${more}` }),
      table("in-flight-table", ["#", "Label", "Attempt", "Running for"], rows, "No item is running."),
    );
  }

  let failedSearch = null;

  function searchBox() {
    if (failedSearch) return failedSearch;
    failedSearch = el("input", {
      id: "failed-search",
      type: "search",
      placeholder: "Search failed items by label",
      "aria-label": "Search failed items by label",
    });
    failedSearch.addEventListener("input", () => {
      clearTimeout(failedSearch.pending);
      failedSearch.pending = setTimeout(() => {
        state.search = failedSearch.value.trim();
        state.offset = 0;
        refresh(true);
      }, 300);
    });
    return failedSearch;
  }

  function failedSection(data) {
    const view = data.failed;
    const rows = view.items.map((f) =>
      el(
        "tr",
        { className: "failed-row", "data-index": f.index },
        el("td", { className: "num", text: fmt(f.index) }),
        el("td", { className: "label", text: f.label }),
        el("td", { className: "message" }, el("span", { className: "error-type", text: f.error_type }), ": ", f.message),
        el("td", { className: "num attempts", text: f.attempts }),
      ),
    );
    const empty = view.search ? `No failed item's label contains “${view.search}”.` : "No item failed.";
    const first = view.items.length ? view.offset + 1 : 0;
    const last = view.offset + view.items.length;
    const of = view.total === null ? "more" : fmt(view.total);
    const prev = el("button", { id: "failed-prev", type: "button", text: "‹ Previous", disabled: view.offset === 0 });
    const next = el("button", {
      id: "failed-next",
      type: "button",
      text: "Next ›",
      disabled: !(view.more || (view.total !== null && last < view.total)),
    });
    prev.addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - FAILED_PAGE);
      refresh(true);
    });
    next.addEventListener("click", () => {
      state.offset += FAILED_PAGE;
      refresh(true);
    });
    const pager = el("div", { className: "pager" }, prev, el("span", { id: "failed-range", text: `${fmt(first)}–${fmt(last)} of ${of}` }), next);
    return el(
      "section",
      { id: "failed" },
      el("h2", { text: `Failed items: ${fmt(data.ledger.counts.failed)}` }),
      el("div", { className: "toolbar" }, searchBox()),
      table("failed-table", ["#", "Label", "Error", "Attempts"], rows, empty),
      view.items.length || view.offset ? pager : null,
    );
  }

  let findHolder = null;

  function findSection(ledger) {
    const succeeded = fmt(ledger.counts.succeeded + (ledger.counts.resumed || 0));
    const note = `${succeeded} item(s) succeeded. Give an index (its place in the input) or part of a label.`;
    if (findHolder) {
      findHolder.querySelector("#find-note").textContent = note;
      return findHolder;
    }
    const input = el("input", { id: "find-input", type: "search", placeholder: "An item's index or label", "aria-label": "Find an item" });
    const result = el("div", { id: "find-result" });
    const button = el("button", { id: "find-button", type: "submit", text: "Find" });
    const form = el("form", { id: "find-form", className: "toolbar" }, input, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const query = input.value.trim();
      if (!query) return;
      const param = /^\d+$/.test(query) ? `index=${query}` : `label=${encodeURIComponent(query)}`;
      result.replaceChildren(el("p", { className: "muted", text: "Looking…" }));
      try {
        const data = await getJSON(`${config.base}/api/ti/${tiPath()}/find?${param}`);
        result.replaceChildren(...renderFound(data));
      } catch (error) {
        result.replaceChildren(el("p", { className: "error", text: explain(error) }));
      }
    });
    findHolder = el("section", { id: "find" }, el("h2", { text: "Find an item" }), el("p", { className: "muted", id: "find-note", text: note }), form, result);
    return findHolder;
  }

  function renderFound(data) {
    const lines = data.found.map((found) => {
      const head = el("strong", { text: `#${fmt(found.index)}` });
      if (found.status === "failed") {
        const f = found.failure;
        return el("li", { className: "found-failed" }, head, " failed after ", String(f.attempts), " attempt(s): ", el("span", { className: "label", text: f.label }), " — ", `${f.error_type}: ${f.message}`);
      }
      if (found.status === "running") {
        const item = found.item;
        return el("li", { className: "found-running" }, head, " is running (attempt ", String(item.attempt), ", for ", since(item.running_since), "): ", el("span", { className: "label", text: item.label }));
      }
      const words = {
        succeeded: "succeeded",
        pending: "has not started yet",
        running_or_pending: "is running or has not started yet",
        not_run: "did not run",
        unknown: "is not in the ranges the ledger lists",
        outside: "is not an item of this task instance",
      };
      return el("li", { className: `found-${found.status}` }, head, ` ${words[found.status] || found.status}`, found.detail ? ` (${found.detail})` : "");
    });
    const out = [lines.length ? el("ul", {}, lines) : el("p", { className: "muted", text: "No running or failed item has that label." })];
    if (data.note) out.push(el("p", { className: "muted", text: data.note }));
    return out;
  }

  function chunksSection(ledger) {
    const chunks = ledger.chunks;
    const index = Object.fromEntries(chunks.columns.map((c, i) => [c, i]));
    const rows = chunks.rows.map((row) =>
      el(
        "tr",
        { className: "chunk-row" },
        el("td", { className: "num", text: row[index.map_index] }),
        el("td", { className: "num", text: `${fmt(row[index.start])}–${fmt(row[index.stop] - 1)}` }),
        el("td", { className: "num", text: fmt(row[index.succeeded]) }),
        el("td", { className: "num", text: fmt(row[index.failed]) }),
      ),
    );
    return el(
      "section",
      { id: "chunks" },
      el("h2", { text: `Chunks: ${fmt(chunks.count)}` }),
      table("chunks-table", ["Chunk", "Items", "Succeeded", "Failed"], rows, "No chunk."),
    );
  }

  function rerunSection(data) {
    const rerun = data.rerun || {};
    const section = el("section", { id: "rerun" });
    const status = el("span", { id: "rerun-status", role: "status", className: state.rerunError ? "error" : "", text: state.rerunMessage || "" });
    const failed = data.ledger.counts.failed;
    if (!rerun.available && rerun.reason && failed) {
      section.append(el("p", { id: "rerun-unavailable", className: "muted", text: rerun.reason }));
      return section;
    }
    if (rerun.gathered && failed) {
      section.append(el("p", { className: "muted", text: "To rerun failed items, open the Items tab of each chunk that has failures." }));
      return section;
    }
    if (!rerun.offered) {
      if (state.rerunMessage) section.append(el("div", { className: "toolbar" }, status));
      else if (rerun.available && !rerun.allowed && failed && data.finished)
        section.append(el("p", { className: "muted", id: "rerun-not-allowed", text: "Rerunning failed items needs edit access to this DAG's task instances." }));
      return section;
    }
    const count = fmt(failed);
    const idle = `Rerun ${count} failed item(s)`;
    const confirm = `Confirm: rerun only the ${count} failed item(s) and clear what follows`;
    const button = el("button", { id: "rerun-button", type: "button", className: "primary", text: state.armed ? confirm : idle });
    const cancel = el("button", { id: "rerun-cancel", type: "button", text: "Cancel", hidden: !state.armed });
    button.addEventListener("click", async () => {
      if (!state.armed) {
        state.armed = true;
        button.textContent = confirm;
        cancel.hidden = false;
        return;
      }
      state.armed = false;
      button.disabled = true;
      cancel.hidden = true;
      status.className = "";
      status.textContent = "Asking Airflow…";
      try {
        const response = await fetch(`${config.base}/api/ti/${tiPath()}/rerun-failed`, {
          method: "POST",
          credentials: "same-origin",
          headers: { Accept: "application/json", "X-Iterate-CSRF": config.csrf },
        });
        const body = await response.json().catch(() => ({}));
        if (!response.ok) throw Object.assign(new Error(body.detail || response.statusText), { status: response.status });
        state.rerunError = false;
        state.rerunMessage = `Cleared ${body.cleared.join(", ")}: the next try reruns only the failed items.`;
        state.stopped = false;
        refresh(true);
      } catch (error) {
        button.disabled = false;
        button.textContent = idle;
        state.rerunError = true;
        state.rerunMessage = error.status === 403 ? `Refused: ${error.message}` : `Could not rerun: ${error.message}`;
        status.className = "error";
        status.textContent = state.rerunMessage;
      }
    });
    cancel.addEventListener("click", () => {
      state.armed = false;
      cancel.hidden = true;
      button.textContent = idle;
    });
    section.append(el("div", { className: "toolbar" }, button, cancel, status));
    section.append(el("p", { className: "muted", text: "The next try reuses every other item's result; its task instance and what runs after it are cleared." }));
    return section;
  }

  function renderTaskInstance(data) {
    document.getElementById("subtitle").textContent = stateLine(data);
    document.body.dataset.tiState = data.task_instance.state || "none";
    document.body.dataset.try = String(data.task_instance.try_number);
    if (!data.ledger) {
      showNotice(data.message, data.iterated ? "info" : "warn");
      content.replaceChildren(el("p", { id: data.iterated ? "waiting" : "not-iterated", className: "muted", text: data.message }));
      return;
    }
    const ti = data.task_instance;
    document.body.dataset.ledgerTry = String(data.ledger.try_number);
    document.body.dataset.ledgerState = data.ledger.state;
    if (!data.current && data.ledger.try_number < ti.try_number) {
      showNotice(`Try ${ti.try_number} has not written its ledger yet (${ti.state || "cleared"}): showing try ${data.ledger.try_number}.`, "info");
    } else {
      showNotice("");
    }
    const sections = [summarySection(data), rerunSection(data)];
    if (data.ledger.chunks) sections.push(chunksSection(data.ledger));
    sections.push(inFlightSection(data.ledger), failedSection(data), findSection(data.ledger));
    // Moving the inputs (kept across refreshes) would blur them: give the focus back.
    const focused = document.activeElement;
    const kept = focused && (focused.id === "failed-search" || focused.id === "find-input") ? focused : null;
    const selection = kept ? [kept.selectionStart, kept.selectionEnd] : null;
    content.replaceChildren(...sections);
    if (kept) {
      kept.focus();
      try {
        kept.setSelectionRange(...selection);
      } catch (e) {
        /* not a text input */
      }
    }
  }

  // ---- a DAG run ----------------------------------------------------------------------------

  function tiLink(taskId, mapIndex, text) {
    const href = `${config.base}/ti/${seg(config.dag_id)}/${seg(config.run_id)}/${seg(taskId)}/${mapIndex}`;
    return el("a", { href, text });
  }

  function progressCell(summary) {
    return el("td", { className: "bar-cell" }, progressBar(summary.total, summary.counts));
  }

  function summaryRow(summary, name, className) {
    const c = summary.counts;
    return el(
      "tr",
      { className },
      el("td", {}, name),
      el("td", { text: summary.state || summary.ti_state || "not started" }),
      progressCell(summary),
      el("td", { className: "num", text: `${fmt(c.done)} / ${summary.total === null || summary.total === undefined ? "?" : fmt(summary.total)}` }),
      el("td", { className: "num", text: fmt(c.failed) }),
      el("td", { className: "num", text: fmt(c.in_flight) }),
      el("td", { className: "num", text: summary.rate ? `${rate(summary.rate)}/s` : "–" }),
    );
  }

  const RUN_HEADERS = ["Task", "State", "Progress", "Done", "Failed", "In flight", "Rate"];

  function renderRun(data) {
    const sections = [];
    if (!data.tasks.length && !data.chunked.length) {
      showNotice("No task of this DAG run is an iterated one (.iterate()).", "info");
      content.replaceChildren(el("p", { id: "no-iterated", className: "muted", text: "Tasks that call .iterate() are listed here with their items." }));
      return;
    }
    showNotice("");
    if (data.tasks.length) {
      const rows = data.tasks.map((t) => summaryRow(t, tiLink(t.task_id, t.map_index, t.map_index >= 0 ? `${t.task_id} [${t.map_index}]` : t.task_id), "task-row"));
      sections.push(el("section", { id: "run-tasks" }, el("h2", { text: "Iterated tasks" }), table("run-tasks-table", RUN_HEADERS, rows, "")));
    }
    for (const group of data.chunked) {
      const rows = group.chunks.map((chunk) =>
        summaryRow(chunk, tiLink(chunk.task_id, chunk.map_index, `chunk ${chunk.map_index}` + (chunk.start === null || chunk.start === undefined ? "" : ` (items ${fmt(chunk.start)}–${fmt(chunk.stop - 1)})`)), "chunk-row"),
      );
      const totals = summaryRow({ ...group, ti_state: null }, el("strong", { text: "all chunks" }), "totals-row");
      const gather = group.gather ? tiLink(group.gather_task_id, -1, "the gathered ledger") : null;
      sections.push(
        el(
          "section",
          { className: "group", "data-group": group.group },
          el("h2", { text: `${group.group} — chunked, ${fmt(group.chunks.length)} chunk(s)` }),
          table(`chunks-${group.group}`, RUN_HEADERS, [totals, ...rows], ""),
          gather ? el("p", { className: "muted" }, "After the last chunk: ", gather, ".") : null,
        ),
      );
    }
    content.replaceChildren(...sections);
  }

  // ---- polling ------------------------------------------------------------------------------

  function url() {
    if (config.kind === "run") return `${config.base}/api/run/${seg(config.dag_id)}/${seg(config.run_id)}`;
    const params = new URLSearchParams({ failed_offset: String(state.offset), failed_limit: String(FAILED_PAGE) });
    if (state.search) params.set("search", state.search);
    return `${config.base}/api/ti/${tiPath()}?${params}`;
  }

  function schedule(delay) {
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, delay);
  }

  async function refresh(userAction) {
    if (state.busy) {
      if (userAction) schedule(50);
      return;
    }
    if (document.hidden && !userAction) {
      polling.textContent = "· paused while the tab is hidden";
      return; // visibilitychange resumes
    }
    state.busy = true;
    try {
      const data = await getJSON(url());
      document.getElementById("loading")?.remove();
      if (config.kind === "run") renderRun(data);
      else renderTaskInstance(data);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      state.stopped = !data.poll;
      polling.textContent = state.stopped ? "· final: the task instance has ended" : `· refreshing every ${config.poll_seconds}s`;
      document.body.dataset.polling = state.stopped ? "stopped" : "running";
      if (!state.stopped) schedule(config.poll_seconds * 1000);
    } catch (error) {
      showNotice(explain(error), "error");
      document.getElementById("loading")?.remove();
      if (error.status === 401 || error.status === 403 || error.status === 404) {
        state.stopped = true;
        polling.textContent = "";
        document.body.dataset.polling = "stopped";
      } else {
        schedule(config.poll_seconds * 2000);
      }
    } finally {
      state.busy = false;
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !state.stopped) refresh();
  });

  refresh(true);
})();
