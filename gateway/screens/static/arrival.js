// Arrival screen (运抵, PROTOCOL §9): the open transit of an arrival
// station, its seals expected and seen, its contents counted of expected,
// extra and missing items, the items stopped here; with no transit open,
// the result of the last one closed. The hub sends the station's arrival
// state in the hello and again whenever it changes ("transit" messages);
// decisions fill the list of recent scans.
"use strict";
(() => {
  const { lang, t, h, $, kind, reason, shape, scanRow, beep, bar, showLink, connect, hms, dateTime } = CG;
  const id = decodeURIComponent(location.pathname.split("/")[2] || "");

  const L = {
    zh: {
      title: "运抵", transit: "转关", open: "清点中", none: "无进行中的转关", noneTodo: "扫描转关单号开始清点",
      openedAt: "开始", lastScan: "最近扫描", closedAt: "关闭于", lastClosed: "上一车 · 已关闭",
      counted: "已清点", countedClosed: "实到 / 应到", missingN: (n) => `缺 ${n}`, extraN: (n) => `多 ${n}`, stoppedN: (n) => `停止 ${n}`,
      seals: "关锁", sealsSeen: (a, b) => `已见 ${a}/${b}`, foreignN: (n) => `非本车 ${n}`, noSealOrder: "本车无施封指令",
      seen: "已见", notSeen: "未见", sealMissing: "缺失", foreign: "非本车",
      contents: "内件明细", itemCounted: "已点", itemNotCounted: "未到", itemMissing: "缺少", itemExtra: "多出", stop: "停止",
      more: (n) => `… 另有 ${n} 项`, noItems: "无内件记录",
      sealsOk: "关锁完好", sealsBad: "关锁异常", complete: "内件齐全", incomplete: "内件不符",
      recent: "最近扫描", closedW: "已关闭", notArrival: "本站不是运抵站", stationScreen: "站点屏",
    },
    en: {
      title: "Arrival", transit: "Transit", open: "counting", none: "No transit open", noneTodo: "Scan a transit manifest to start counting",
      openedAt: "opened", lastScan: "last scan", closedAt: "closed at", lastClosed: "last transit · closed",
      counted: "Counted", countedClosed: "counted / expected", missingN: (n) => `${n} missing`, extraN: (n) => `${n} extra`, stoppedN: (n) => `${n} stopped`,
      seals: "Seals", sealsSeen: (a, b) => `${a} of ${b} seen`, foreignN: (n) => `${n} foreign`, noSealOrder: "no seal order for this transit",
      seen: "seen", notSeen: "not seen", sealMissing: "MISSING", foreign: "FOREIGN",
      contents: "Contents", itemCounted: "counted", itemNotCounted: "not yet", itemMissing: "MISSING", itemExtra: "EXTRA", stop: "STOP",
      more: (n) => `… and ${n} more`, noItems: "no contents on record",
      sealsOk: "seals OK", sealsBad: "seals NOT OK", complete: "contents complete", incomplete: "contents do not match",
      recent: "Last 20 scans", closedW: "closed", notArrival: "this is not an arrival station", stationScreen: "station screen",
    },
  };
  const a = (k, ...x) => { const v = L[lang === "en" ? "en" : "zh"][k]; return typeof v === "function" ? v(...x) : v; };
  // A word in Chinese mode gets its English beside it, as on the verdicts.
  const bi = (k) => lang === "en" ? a(k) : [a(k), h("small", {}, L.en[k])];

  document.title = `${a("title")} ${id} · cargogate`;
  bar(`${a("title")} ${id}`, true);
  $("#recent-title").textContent = a("recent");

  const key = (s) => `${s.kind}:${s.id}`;
  const MAX_ROWS = 60; // rows a list shows; the counts are always whole

  let state = { transit: null, stopped: [], arrival: null };
  let recent = [];
  let role = "";

  // model is what the panels show: the open transit, else the last closed.
  function model() {
    const tr = state.transit;
    if (tr && tr.transit) {
      const extra = tr.extra || [];
      const extraKeys = new Set(extra.map(key));
      return {
        open: true, id: tr.transit.id, openedAt: tr.opened_at, lastLine: tr.last_line, sealed: tr.sealed,
        sealsExpected: tr.seals_expected || [], sealsSeen: tr.seals_seen || [], foreign: tr.foreign || [],
        expected: tr.expected || 0, counted: tr.counted_ok || 0,
        countedItems: (tr.counted || []).filter((s) => !extraKeys.has(key(s))),
        missing: tr.missing || [], extra, stopped: state.stopped || [],
      };
    }
    const r = state.arrival;
    if (r && r.event && r.event.transit) {
      const e = r.event, exp = e.seals_expected || [], seen = e.seals_seen || [];
      return {
        open: false, id: e.transit.id, closedAt: e.at, sealed: exp.length > 0, sealsOk: !!e.seals_ok,
        sealsExpected: exp, sealsSeen: seen, foreign: seen.filter((s) => !exp.includes(s)),
        expected: e.expected || 0, counted: e.counted || 0, countedItems: [],
        missing: e.missing || [], extra: e.extra || [], stopped: r.stopped || [],
      };
    }
    return null;
  }

  function head(m) {
    const box = $("#head");
    box.dataset.state = m ? (m.open ? "open" : "closed") : "none";
    box.dataset.transit = m ? m.id : "";
    if (!m || !m.open) {
      const kids = [h("div", { class: "idle" }, h("div", { class: "label" }, a("transit")), h("div", { class: "id" }, a("none")),
        h("div", { class: "todo" }, "➜ ", a("noneTodo")))];
      if (m) {
        const ok = m.sealsOk, full = m.counted === m.expected && m.extra.length === 0;
        kids.push(h("div", { class: "closed" }, h("div", { class: "label" }, a("lastClosed")), h("div", { class: "id2" }, m.id),
          h("div", { class: "times" }, `${a("closedAt")} ${dateTime(m.closedAt)}`)),
        h("div", { class: "badges", id: "result", dataset: { sealsOk: String(ok), complete: String(full) } },
          h("span", { class: "badge " + (ok ? "ok" : "bad") }, shape(ok ? "passSmall" : "stopSmall"), bi(ok ? "sealsOk" : "sealsBad")),
          h("span", { class: "badge " + (full ? "ok" : "bad") }, shape(full ? "passSmall" : "stopSmall"), bi(full ? "complete" : "incomplete"))));
      }
      if (role && role !== "arrival") kids.push(h("div", { class: "badge bad" }, a("notArrival")));
      box.replaceChildren(...kids);
      return;
    }
    box.replaceChildren(
      h("div", {}, h("div", { class: "label" }, a("transit")), h("div", { class: "id", id: "transit-id" }, m.id)),
      h("div", { class: "times" },
        h("div", {}, `${a("openedAt")} `, h("b", {}, dateTime(m.openedAt))),
        h("div", {}, `${a("lastScan")} `, h("b", { dataset: { at: m.lastLine } }, hms(m.lastLine)))),
      h("div", { class: "badges" }, h("span", { class: "badge open" }, shape("pendingSmall"), a("open"))));
  }

  function progress(m) {
    const box = $("#progress");
    if (!m) { box.replaceChildren(h("h2", {}, a("counted")), h("div", { class: "big" }, "—")); return; }
    const pct = m.expected > 0 ? Math.min(100, Math.round((100 * m.counted) / m.expected)) : 0;
    const fill = h("div", { class: "fill" });
    fill.style.width = `${pct}%`;
    const missingN = Math.max(m.missing.length, m.expected - m.counted);
    const chip = (cls, icon, text, n) => h("span", { class: `chip ${cls}${n ? "" : " zero"}` }, shape(icon), text);
    box.dataset.counted = String(m.counted);
    box.dataset.expected = String(m.expected);
    box.replaceChildren(
      h("h2", {}, m.open ? a("counted") : `${a("lastClosed")} · ${a("countedClosed")}`),
      h("div", { class: "row" },
        h("div", { class: "big", id: "count" }, String(m.counted), h("small", {}, ` / ${m.expected}`)),
        h("div", { class: "gauge" },
          h("div", { class: "meter" + (m.counted === m.expected && m.expected > 0 ? " full" : ""), role: "progressbar",
            "aria-valuemin": "0", "aria-valuemax": String(m.expected), "aria-valuenow": String(m.counted) }, fill),
          h("div", { class: "chips" },
            chip("missing", "pendingSmall", a("missingN", missingN), missingN),
            chip("extra", "warnSmall", a("extraN", m.extra.length), m.extra.length),
            chip("stopped", "stopSmall", a("stoppedN", m.stopped.length), m.stopped.length)))));
  }

  function mark(st, icon, word, idText, extra, data) {
    return h("li", { class: "mark", dataset: { state: st, ...data } }, shape(icon), h("span", { class: "w" }, word),
      h("span", { class: "id" }, idText), extra ? h("small", {}, extra) : null);
  }

  function seals(m) {
    const box = $("#seals");
    if (!m) { box.replaceChildren(h("h2", {}, a("seals")), h("div", { class: "none" }, "—")); return; }
    const seenOK = m.sealsExpected.filter((s) => m.sealsSeen.includes(s));
    const title = [a("seals"), a("sealsSeen", seenOK.length, m.sealsExpected.length)];
    if (m.foreign.length) title.push(a("foreignN", m.foreign.length));
    const rows = [];
    for (const s of m.foreign) rows.push(mark("foreign", "warnSmall", bi("foreign"), s, null, { seal: s }));
    for (const s of m.sealsExpected) {
      if (m.sealsSeen.includes(s)) rows.push(mark("seen", "passSmall", bi("seen"), s, null, { seal: s }));
      else rows.push(mark("missing", "pendingSmall", m.open ? bi("notSeen") : bi("sealMissing"), s, null, { seal: s }));
    }
    const kids = [h("h2", {}, title.join(" · "))];
    if (!m.sealed) kids.push(h("div", { class: "note" }, a("noSealOrder")));
    kids.push(h("ul", { class: "marks", id: "seal-list" }, ...rows));
    box.replaceChildren(...kids);
  }

  function contents(m) {
    const box = $("#contents");
    if (!m) { box.replaceChildren(h("h2", {}, a("contents")), h("div", { class: "none" }, "—")); return; }
    const stopped = new Map(m.stopped.map((s) => [key(s.subject), s]));
    const extraKeys = new Set(m.extra.map(key));
    const label = (s) => [h("span", { class: "k" }, kind(s.kind)), " ", s.id];
    const rows = [], seen = new Set();
    const add = (s, st) => {
      const k = key(s);
      if (seen.has(k)) return;
      seen.add(k);
      const x = stopped.get(k);
      const data = { id: s.id, kind: s.kind };
      if (x) {
        data.stopped = x.reason;
        const extraWord = st === "extra" ? ` · ${a("itemExtra")}` : "";
        rows.push(mark(st, "stopSmall", bi("stop"), label(s), reason(x.reason)[0] + extraWord, data));
        rows[rows.length - 1].classList.add("stopped");
      } else if (st === "extra") rows.push(mark(st, "warnSmall", bi("itemExtra"), label(s), null, data));
      else if (st === "missing") rows.push(mark(st, "pendingSmall", m.open ? bi("itemNotCounted") : bi("itemMissing"), label(s), null, data));
      else rows.push(mark(st, "passSmall", bi("itemCounted"), label(s), null, data));
    };
    // Stopped first, then extra, missing, and what was counted (newest first).
    for (const x of m.stopped) add(x.subject, extraKeys.has(key(x.subject)) ? "extra" : "counted");
    for (const s of m.extra) add(s, "extra");
    for (const s of m.missing) add(s, "missing");
    for (const s of m.countedItems.slice().reverse()) add(s, "counted");
    const kids = [h("h2", {}, a("contents"))];
    if (rows.length === 0) kids.push(h("div", { class: "none" }, a("noItems")));
    kids.push(h("ul", { class: "marks", id: "item-list" }, ...rows.slice(0, MAX_ROWS)));
    if (rows.length > MAX_ROWS) kids.push(h("div", { class: "note" }, a("more", rows.length - MAX_ROWS)));
    box.replaceChildren(...kids);
  }

  function renderRecent() {
    const m = model();
    const foreign = new Set(m ? m.foreign : []);
    $("#recent").replaceChildren(...recent.map((o) => {
      const li = scanRow(o);
      if (o.kind === "seal" && foreign.has(o.seal)) {
        li.classList.add("foreign");
        li.querySelector(".v").replaceChildren(shape("warnSmall"), a("foreign"));
      } else if (o.kind === "seal") li.querySelector(".v").replaceChildren(kind("seal"));
      else if (o.kind === "arrival") li.querySelector(".v").replaceChildren(a("closedW"));
      if ((!o.kind || o.kind === "scan") && !o.pass && o.subject && o.subject.kind !== "transit") li.classList.add("stopped");
      return li;
    }));
  }

  function render() {
    const m = model();
    head(m);
    progress(m);
    seals(m);
    contents(m);
    renderRecent();
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  }

  render();
  connect(id, (msg) => {
    switch (msg.type) {
      case "hello":
        role = (msg.station && msg.station.role) || "";
        state = msg.arrival || { transit: null, stopped: [], arrival: null };
        recent = (msg.recent || []).slice().reverse().slice(0, 20);
        render();
        break;
      case "transit":
        if (msg.station !== id) break;
        state = { transit: msg.transit, stopped: msg.stopped || [], arrival: msg.arrival };
        render();
        break;
      case "decision": {
        const o = msg.outcome;
        if (o.station !== id) break;
        recent.unshift(o);
        recent = recent.slice(0, 20);
        renderRecent();
        if ((!o.kind || o.kind === "scan") && !o.pass) beep();
        break;
      }
      case "overview":
        showLink(msg.overview.status);
        break;
    }
  });
})();
