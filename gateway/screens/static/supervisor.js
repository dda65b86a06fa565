// Supervisor overview: alarms, the link to central, every station with its
// devices, counts by decision and reason over the last hour, latest scans.
// The gateway pushes the overview every second.
"use strict";
(() => {
  const { t, h, $, reason, bar, showLink, connect, hms, duration, scanRow } = CG;
  document.title = `${t("supervisor")} · cargogate`;
  bar(t("supervisor"));
  $("#latest-title").textContent = t("latest");

  const n = (v) => (v === undefined || v === null ? "—" : String(v));

  function alarms(ov) {
    const box = $("#alarms");
    const list = ov.alarms || [];
    box.dataset.count = String(list.length);
    box.replaceChildren(h("h2", {}, `${t("alarms")} (${list.length})`));
    if (list.length === 0) {
      box.append(h("div", { class: "calm" }, t("noAlarms")));
      return;
    }
    const st = ov.status || {}, l = st.link || {};
    // Details in the page's language where the page has the figures.
    const detail = (a) => a.kind === "outbox_filling" ? `${t("outbox")} ${l.outbox}`
      : a.kind === "clock_trouble" ? `${t("clockBehind")} ${Math.round(st.clock_behind_s || 0)} s` : a.detail || "";
    box.append(h("ul", {}, ...list.map((a) => {
      const where = [a.station, a.device ? (t("devName")[a.device] || a.device) : ""].filter(Boolean).join(" ");
      const since = a.since && !a.since.startsWith("0001") ? `${t("since")} ${hms(a.since)}` : "";
      return h("li", { dataset: { kind: a.kind } }, `${t("alarm")[a.kind] || a.kind} ${where}`, h("small", {}, [since, detail(a)].filter(Boolean).join(" · ")));
    })));
  }

  function link(ov) {
    const st = ov.status || {};
    const l = st.link;
    const box = $("#link");
    box.replaceChildren(h("h2", {}, t("link")));
    if (!l) { box.append(h("div", {}, "—")); return; }
    const since = l.since && !l.since.startsWith("0001") ? l.since : null;
    const forS = since ? (Date.now() - new Date(since)) / 1000 : null;
    const state = h("td", { id: "linkstate" },
      h("span", { class: "st " + (l.online ? "up" : "down") }, l.online ? t("online") : t("offlineW")),
      since ? ` ${t("since")} ${hms(since)} (${duration(forS)})` : "");
    const oldest = l.outbox_oldest_s === undefined ? t("na") : l.outbox > 0 ? duration(l.outbox_oldest_s) : "—";
    const rejectedBy = Object.entries(l.rejected_by || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    const rows = [
      [t("link"), state],
      [t("head"), n(l.head_seq)],
      [t("watermark"), n(l.applied_seq)],
      [t("lag"), n(l.lag) + (l.resyncing ? ` · ${t("resyncing")}` : "")],
      [t("outbox"), n(l.outbox)],
      [t("oldest"), oldest],
      [t("rejected"), n(l.rejected) + (rejectedBy ? ` (${rejectedBy})` : "")],
      [t("clockBehind"), `${Math.round(st.clock_behind_s || 0)} s`],
    ];
    if (st.store && st.store.bytes !== undefined) {
      const mib = (b) => (b / 1048576).toFixed(1) + " MiB";
      const growth = st.store.growth_bytes_per_hour;
      rows.push([t("storeSize"), mib(st.store.bytes) + (growth !== undefined && growth !== null ? ` (${growth >= 0 ? "+" : ""}${mib(growth)}/h)` : "")]);
    }
    box.append(h("table", { class: "kv" }, ...rows.map(([k, v]) => h("tr", {}, h("th", {}, k), v instanceof Node ? v : h("td", {}, v)))));
  }

  function counts(ov) {
    const c = ov.counts || { pass: 0, stop: 0, by_reason: {} };
    const box = $("#counts");
    box.replaceChildren(h("h2", {}, t("hourTitle")),
      h("div", {}, h("span", { class: "big-n", id: "count-pass" }, h("span", { class: "vs pass" }, CG.shape("passSmall"), t("pass")), " ", String(c.pass)),
        h("span", { class: "big-n", id: "count-stop" }, h("span", { class: "vs stop" }, CG.shape("stopSmall"), t("stop")), " ", String(c.stop))),
      h("h2", {}, t("byReason")));
    const entries = Object.entries(c.by_reason || {}).sort((a, b) => b[1] - a[1]);
    const top = Math.max(1, ...entries.map((e) => e[1]));
    box.append(h("ul", { class: "bars", id: "reasons" }, ...entries.map(([r, k]) => {
      const fill = h("div", { class: "bar-fill" });
      fill.style.width = `${Math.round((100 * k) / top)}%`;
      return h("li", { class: r, dataset: { reason: r } }, h("span", {}, reason(r)[0]), h("div", {}, fill), h("span", {}, String(k)));
    })));
  }

  function stations(ov) {
    const box = $("#stations");
    const head = h("tr", {}, ...[t("station"), t("scanner"), t("gate"), t("last"), t("hour"), ""].map((x) => h("th", {}, x)));
    const rows = (ov.stations || []).map((s) => {
      const dev = (d) => {
        const v = (s.devices || {})[d];
        if (!v) return h("span", { class: "st unknown" }, "—");
        return h("span", { class: "st " + v.state, title: v.detail || "" }, t("device")[v.state] || v.state);
      };
      const g = s.gate_state || { state: "none" };
      const gateCell = s.gate || g.state !== "none"
        ? h("td", {}, dev("gate"), " ", h("span", { class: "st " + g.state }, t("gateState")[g.state] || g.state))
        : h("td", {}, h("span", { class: "st none" }, t("gateState").none));
      const o = s.last;
      const lastCell = o
        ? h("td", {}, h("span", { class: "vs " + (o.pass ? "pass" : "stop") }, CG.shape(o.pass ? "passSmall" : "stopSmall"), o.pass ? t("pass") : t("stop")), ` ${o.code} · ${reason(o.reason)[0]}`, h("small", {}, ` ${hms(o.at)}`))
        : h("td", {}, "—");
      const links = h("td", {}, h("a", { href: `/station/${encodeURIComponent(s.id)}` }, t("stationScreen")),
        s.gate ? [" · ", h("a", { href: `/gate/${encodeURIComponent(s.id)}` }, t("gateScreen"))] : null,
        s.role === "arrival" ? [" · ", h("a", { href: `/arrival/${encodeURIComponent(s.id)}` }, t("arrivalScreen"))] : null);
      // An arrival station's open transit: its id and counted/expected.
      const tr = s.transit ? h("div", { class: "trbrief", dataset: { transit: s.transit.transit.id } }, t("transitBrief", s.transit)) : null;
      return h("tr", { dataset: { station: s.id } }, h("td", {}, h("b", {}, s.id), h("br"), h("small", {}, t("roles")[s.role] || s.role || ""), tr),
        h("td", {}, dev("scanner")), gateCell, lastCell, h("td", {}, `${s.pass} / ${s.stop}`), links);
    });
    box.replaceChildren(h("h2", {}, t("stations")), h("table", { class: "grid" }, head, ...rows));
  }

  function render(ov) {
    showLink(ov.status);
    alarms(ov);
    link(ov);
    counts(ov);
    stations(ov);
    $("#latest").replaceChildren(...(ov.recent || []).slice().reverse().map((o) => scanRow(o, true)));
    const st = ov.status || {};
    $("#foot").textContent = `${st.site || ""}/${st.gateway || ""} · ${st.version || ""} · ${t("screens")} ${ov.screens} · ${t("dropped")} ${ov.dropped + ov.slow_screens_dropped}`;
    document.body.dataset.updated = ov.at;
  }

  // Paired devices (screens, browsers, handhelds) and their last use.
  async function devices() {
    let list;
    try { const r = await fetch("/api/devices", { cache: "no-store" }); if (!r.ok) return; list = await r.json(); } catch (e) { return; }
    const en = CG.lang === "en";
    const head = h("tr", {}, ...(en ? ["device", "role", "station", "paired", "last used"] : ["设备", "角色", "站点", "配对时间", "最近使用"]).map((x) => h("th", {}, x)));
    const rows = (list || []).map((d) => h("tr", { dataset: { device: d.name } }, h("td", {}, d.name), h("td", {}, d.role), h("td", {}, d.station || ""),
      h("td", {}, CG.dateTime ? CG.dateTime(d.created) : d.created), h("td", { class: "lastused" }, d.last_used ? `${CG.hms(d.last_used)} · ${CG.age(d.last_used)}` : "—")));
    $("#devices").replaceChildren(h("h2", {}, en ? "Paired devices" : "已配对设备"), h("table", { class: "grid" }, head, ...rows));
  }
  devices();
  setInterval(devices, 10000);

  connect("", (m) => {
    if (m.type === "overview") render(m.overview);
  });
})();
