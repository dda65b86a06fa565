// cargogate fleet view: every gateway of the site from its signed status,
// worst first. It polls api/fleet (relative: the page may be mounted under
// a prefix) every 2 s. Text from the server is only set with textContent.
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  let lang = params.get("lang") || localStorage.getItem("cargogate.lang") || "zh";
  if (lang !== "en") lang = "zh";
  const T = {
    zh: {
      title: "网关总览", lang: "English", gateway: "网关", state: "状态", lag: "落后", applied: "已应用 / 中心",
      outbox: "待发事件", oldest: "最早未确认", version: "版本", checkpoint: "审计签名", seen: "最近上报",
      st: { online: "在线", offline: "离线", silent: "无上报", unknown: "从未上报" },
      why: { offline: "网关已离线", silent: "超时无上报", never_seen: "从未上报", lag: "指令落后", outbox_old: "事件久未确认", clock_or_replay: "时钟偏差或重放消息" },
      alarms: "告警", noAlarms: "无告警：全部网关在线", sum: (v) => `${v.online}/${v.gateways.length} 在线 · ${v.alarms} 告警`,
      conn: "已连接", noConn: "未连接", stale: "无法读取网关总览 — 正在重试…", nobroker: "总览与代理（broker）断开 — 状态可能过时",
      ago: (s) => s < 60 ? `${Math.round(s)} 秒前` : s < 3600 ? `${Math.round(s / 60)} 分钟前` : s < 86400 ? `${Math.round(s / 3600)} 小时前` : `${Math.round(s / 86400)} 天前`,
      dur: (s) => s < 60 ? `${Math.round(s)} 秒` : s < 3600 ? `${Math.round(s / 60)} 分钟` : `${(s / 3600).toFixed(1)} 小时`,
      foot: (v) => `站点 ${v.site} · 中心最新序号 ${v.head_seq}${v.head_from_central ? "" : "（网关上报）"} · 离线阈值 ${Math.round(v.offline_after_s)} 秒 · 已忽略消息 ${ignored(v)}`,
      never: "—",
    },
    en: {
      title: "Fleet", lang: "中文", gateway: "Gateway", state: "State", lag: "Lag", applied: "Applied / head",
      outbox: "Outbox", oldest: "Oldest unacked", version: "Version", checkpoint: "Audit checkpoint", seen: "Last seen",
      st: { online: "online", offline: "OFFLINE", silent: "SILENT", unknown: "never seen" },
      why: { offline: "gateway offline", silent: "no status within the threshold", never_seen: "never seen", lag: "behind on orders", outbox_old: "events unacknowledged for long", clock_or_replay: "clock off, or replayed statuses" },
      alarms: "Alarms", noAlarms: "no alarms: every gateway online", sum: (v) => `${v.online}/${v.gateways.length} online · ${v.alarms} alarms`,
      conn: "connected", noConn: "not connected", stale: "Cannot read the fleet view — retrying…", nobroker: "The fleet view is not connected to the broker — states may be stale",
      ago: (s) => s < 60 ? `${Math.round(s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : s < 86400 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`,
      dur: (s) => s < 60 ? `${Math.round(s)} s` : s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`,
      foot: (v) => `site ${v.site} · head ${v.head_seq}${v.head_from_central ? "" : " (as gateways report)"} · offline after ${Math.round(v.offline_after_s)} s · messages ignored ${ignored(v)}`,
      never: "—",
    },
  };
  const t = (k) => T[lang][k];
  const $ = (s) => document.querySelector(s);
  const ignored = (v) => Object.values(v.statuses_ignored || {}).reduce((a, b) => a + b, 0);
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "dataset") Object.assign(e.dataset, v); else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }
  const hms = (d) => d.toLocaleTimeString(lang === "en" ? "en-GB" : "zh-CN", { hour12: false });
  const cols = ["gateway", "state", "lag", "applied", "outbox", "oldest", "version", "checkpoint", "seen"];
  let last = null;

  function render(v) {
    document.title = `${t("title")} · ${v.site} · cargogate`;
    $("#title").textContent = `${t("title")} · ${v.site}`;
    const sum = $("#sumpill");
    sum.className = "pill " + (v.alarms ? "bad" : "ok");
    sum.textContent = t("sum")(v);
    const box = $("#alarms");
    const bad = v.gateways.filter((r) => r.alarm);
    box.dataset.count = String(bad.length);
    box.replaceChildren(h("h2", {}, `${t("alarms")} (${bad.length})`));
    if (!bad.length) box.append(h("div", { class: "calm" }, t("noAlarms")));
    else box.append(h("ul", {}, ...bad.map((r) => h("li", { dataset: { gateway: r.gateway } }, `${r.gateway} ${t("st")[r.state] || r.state}`,
      h("small", {}, [r.problems.map((p) => t("why")[p] || p).join(" · "), r.last_seen_age_s !== null ? `${t("seen")} ${t("ago")(r.last_seen_age_s)}` : ""].filter(Boolean).join(" · "))))));
    $("#rows").replaceChildren(...v.gateways.map((r) => {
      const cell = (k, ...kids) => h("td", { class: k, dataset: { label: t(k) } }, ...kids);
      const warnIf = (cond, text) => cond ? h("span", { class: "bad" }, text) : text;
      const oldest = r.outbox > 0 && r.outbox_oldest_s !== null ? t("dur")(r.outbox_oldest_s) : t("never");
      return h("tr", { class: r.level, dataset: { gateway: r.gateway, state: r.state } },
        cell("gateway", r.gateway),
        cell("state", h("span", { class: "st " + r.state }, t("st")[r.state] || r.state)),
        cell("lag", r.last_seen ? warnIf(r.problems && r.problems.includes("lag"), String(r.lag)) : t("never")),
        cell("applied", r.last_seen ? `${r.applied_seq} / ${v.head_seq}` : t("never")),
        cell("outbox", r.last_seen ? String(r.outbox) : t("never")),
        cell("oldest", warnIf(r.problems && r.problems.includes("outbox_old"), oldest)),
        cell("version", r.version || t("never")),
        cell("checkpoint", r.checkpoint_age_s !== null ? t("ago")(r.checkpoint_age_s) : t("never")),
        cell("seen", r.last_seen ? `${hms(new Date(r.last_seen))} · ${t("ago")(r.last_seen_age_s)}` : t("never")));
    }));
    $("#foot").textContent = t("foot")(v);
  }

  function chrome() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    $("#langbtn").textContent = t("lang");
    $("#head").replaceChildren(...cols.map((k) => h("th", {}, t(k))));
    if (last) render(last);
  }

  async function poll() {
    const pill = $("#connpill");
    try {
      const r = await fetch("api/fleet", { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) throw new Error(String(r.status));
      last = await r.json();
      render(last);
      document.body.dataset.state = last.connected ? "ok" : "nobroker";
      $("#banner").textContent = last.connected ? "" : t("nobroker");
      pill.className = "pill " + (last.connected ? "ok" : "bad");
      pill.textContent = last.connected ? t("conn") : t("noConn");
    } catch (e) {
      document.body.dataset.state = "stale";
      $("#banner").textContent = t("stale");
      pill.className = "pill bad";
      pill.textContent = t("noConn");
    }
  }

  $("#langbtn").addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    localStorage.setItem("cargogate.lang", lang);
    chrome();
  });
  setInterval(() => { $("#clock").textContent = hms(new Date()); }, 1000);
  $("#clock").textContent = hms(new Date());
  chrome();
  poll();
  setInterval(poll, 2000);
})();
