// Gate screen: the last decision; for a bag or ULD, how many items it
// holds and which block it and why; and the gate controller's state.
"use strict";
(() => {
  const { t, h, $, kind, reason, renderVerdict, beep, bar, showLink, connect, shape, hms } = CG;
  const id = decodeURIComponent(location.pathname.split("/")[2] || "");
  document.title = `${t("gate")} ${id} · cargogate`;
  bar(`${t("gate")} ${id}`, true);
  const box = $("#verdict"), ctl = $("#ctl"), contents = $("#contents");
  let last = null, gate = { state: "none" }, devices = {};

  function showGate() {
    let st = gate.state || "none";
    const dev = devices.gate;
    // unknown (a signal that may have reached the gate) is never shown as a
    // plain fault, which says the gate stayed closed.
    if (dev && (dev.state === "down" || dev.state === "fault") && st !== "unknown") st = "fault";
    ctl.dataset.gate = st;
    const sub = [t("gateSub")[st]];
    if ((st === "fault" || st === "unknown") && dev && dev.detail) sub.push(dev.detail);
    else if (gate.since && st === "fault") sub.push(`${t("since")} ${hms(gate.since)}`);
    else if (gate.since) sub.push(`${t("lastSignal")} ${hms(gate.since)}`);
    const scanner = devices.scanner;
    if (scanner) sub.push(`${t("scanner")}: ${t("device")[scanner.state] || scanner.state}`);
    ctl.replaceChildren(h("div", { class: "icon" }, shape(st === "opened" ? "opened" : st === "fault" || st === "unknown" ? "fault" : st === "closed" ? "closed" : "none")),
      h("div", {}, h("div", { class: "sub" }, t("gate")), h("div", { class: "state", id: "gatestate" }, t("gateState")[st]),
        ...sub.map((s) => h("div", { class: "sub" }, s))));
  }

  let recent = [];
  function showContents(o) {
    contents.replaceChildren(h("h2", {}, t("contents")), ...containerView(o),
      h("ol", { class: "recent" }, ...recent.slice(0, 6).map((r) => CG.scanRow(r))));
  }
  // containerView: for a bag or ULD, its item count and what blocks it.
  function containerView(o) {
    const container = o && o.subject && (o.items > 0 || (o.blocking || []).length > 0 || ["bag", "uld", "awb", "transit"].includes(o.subject.kind));
    if (!container) return [h("div", { class: "none" }, t("notContainer"))];
    const out = [h("div", { class: "count", id: "items" }, `${kind(o.subject.kind)} · ${t("items", o.items || 0)}`)];
    const blocking = o.blocking || [];
    if (blocking.length === 0) {
      out.push(h("div", { class: "none" }, o.pass ? t("noBlocking") : ""));
      return out;
    }
    out.push(h("h2", {}, `${t("blocking")} (${blocking.length})`),
      h("ul", { id: "blocking" }, ...blocking.map((b) => {
        const [what, todo] = reason(b.reason);
        return h("li", {}, h("b", {}, `${kind(b.subject.kind)} ${b.subject.id}`), `${what} — ${todo}`);
      })));
    return out;
  }

  function show(o, live) {
    if (o.kind === "seal" || o.kind === "arrival") return;
    recent.unshift(o);
    recent = recent.slice(0, 6);
    last = o;
    renderVerdict(box, o, { flash: live });
    box.dataset.event = o.event_id || "";
    showContents(o);
    if (live) {
      document.body.dataset.scans = String(Number(document.body.dataset.scans || 0) + 1);
      document.body.dataset.lastAt = String(Date.now()); // when the last scan reached this screen
      if (!o.pass) beep();
    }
  }

  renderVerdict(box, null);
  showContents(null);
  showGate();
  setInterval(() => {
    if (last && Date.now() - new Date(last.at) > 20000) box.classList.add("stale");
  }, 1000);

  connect(id, (m) => {
    switch (m.type) {
      case "hello":
        last = null;
        recent = [];
        renderVerdict(box, null);
        showContents(null);
        devices = m.devices || {};
        gate = m.gate_state || { state: "none" };
        for (const o of m.recent || []) show(o, false);
        showGate();
        break;
      case "decision":
        if (m.outcome.station !== id) break;
        show(m.outcome, true);
        if (["opened", "closed", "fault"].includes(m.outcome.gate)) {
          gate = { state: m.outcome.gate, since: new Date().toISOString() };
        }
        showGate();
        break;
      case "device":
        if (m.station !== id) break;
        devices[m.device] = m.state;
        showGate();
        break;
      case "overview": {
        showLink(m.overview.status);
        const me = (m.overview.stations || []).find((s) => s.id === id);
        if (me) { gate = me.gate_state || gate; devices = me.devices || devices; }
        showGate();
        break;
      }
    }
  });
})();
