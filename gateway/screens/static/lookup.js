// Lookup: type or scan a code and see its decision with the orders that
// made it, read from the gateway's local store (offline too). Looking up
// opens no gate and records nothing.
"use strict";
(() => {
  const { t, h, $, kind, action, renderVerdict, bar, showLink, connect, dateTime } = CG;
  document.title = `${t("lookup")} · cargogate`;
  bar(t("lookupTitle"));
  const input = $("#code"), box = $("#verdict"), chain = $("#chain");
  input.placeholder = t("lookupHint");
  $("#go").textContent = t("lookupBtn");
  renderVerdict(box, null);
  box.querySelector(".todo").textContent = t("lookupHint");

  // what says a step of the explanation in the page's language; the
  // gateway's own words are kept under it.
  function what(s) {
    if (CG.lang === "en") return s;
    const rules = [
      [/^released$/, () => "放行"],
      [/^release revoked$/, () => "放行已撤回"],
      [/^release expired at (.*)$/, (m) => `放行已于 ${dateTime(m[1])} 过期`],
      [/^cancelled$/, () => "已撤单"],
      [/^hold (\S+) \((\w+)\)$/, (m) => `扣留 ${m[1]}（${CG.reason("held:" + m[2])[0]}）`],
      [/^no release known$/, () => "无放行记录"],
      [/^all (\d+) items below pass$/, (m) => `${m[1]} 件内件全部可通过`],
      [/^(\d+) of (\d+) items below do not pass$/, (m) => `${m[2]} 件内件中 ${m[1]} 件不可通过`],
      [/^error: (.*)$/, (m) => `错误：${m[1]}`],
    ];
    for (const [re, f] of rules) { const m = s.match(re); if (m) return f(m); }
    return s;
  }

  function orderCell(o) {
    if (!o) return h("td", {}, h("small", {}, t("notFound")));
    const parts = [action(o.action)];
    if (o.hold_id) parts.push(`${o.hold_id}${o.reason ? " (" + o.reason + ")" : ""}`);
    if (o.children) parts.push(`${o.children.length} ×`);
    const small = [];
    if (o.office) small.push(`${t("office")} ${o.office}`);
    if (o.ref) small.push(`${t("ref")} ${o.ref}`);
    if (o.issued_at) small.push(`${t("issued")} ${dateTime(o.issued_at)}`);
    if (o.expires_at) small.push(`${t("expires")} ${dateTime(o.expires_at)}`);
    if (o.note) small.push(`${t("note")}: ${o.note}`);
    return h("td", {}, parts.join(" "), ...small.map((s) => h("small", {}, s)));
  }

  function show(ins) {
    renderVerdict(box, ins, { noAge: true });
    const blocking = ins.blocking || [];
    const notes = box.querySelector(".notes");
    if (ins.items) notes.append(h("span", { id: "items" }, `${t("contents")}: ${t("items", ins.items)}`));
    if (blocking.length) notes.append(h("span", { class: "warn" }, `${t("blocking")}: ${blocking.length}`));
    chain.classList.remove("hidden");
    chain.replaceChildren(h("h2", {}, t("chain")));
    const rows = (ins.chain || []).map((s) => h("tr", {},
      h("td", { class: "seq" }, s.seq ? `#${s.seq}` : "—"),
      h("td", {}, `${kind(s.subject.kind)} ${s.subject.id}`),
      h("td", {}, what(s.what), CG.lang === "en" ? null : h("small", {}, s.what)),
      s.seq ? orderCell(s.order) : h("td", {}, "—")));
    chain.append(h("table", { class: "grid chain", id: "chaintable" },
      h("tr", {}, ...[t("seq"), t("subject"), t("what"), t("order")].map((x) => h("th", {}, x))), ...rows));
    chain.append(h("div", { class: "note" }, t("lookupNote", ins.applied_seq, ins.online), " ", `${t("decidedAt")} ${dateTime(ins.at)}`));
    document.body.dataset.looked = ins.code;
  }

  async function lookup(code) {
    try {
      const r = await fetch(`/api/inspect?code=${encodeURIComponent(code)}`, { cache: "no-store" });
      const body = await r.json();
      if (!r.ok) throw new Error(body.error || r.statusText);
      show(body);
    } catch (e) {
      chain.classList.remove("hidden");
      chain.replaceChildren(h("div", { class: "error" }, `${t("error")}: ${e.message}`));
    }
    // The address names the code: it can be bookmarked, sent or reloaded.
    const u = new URL(location.href);
    u.searchParams.set("code", code);
    history.replaceState(null, "", u.toString());
    input.select(); // the next scan replaces the code
  }

  $("#form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const code = input.value.trim();
    if (code) lookup(code);
  });

  // /lookup?code=X opens X directly.
  const first = (new URLSearchParams(location.search).get("code") || "").trim();
  if (first) {
    input.value = first;
    lookup(first);
  }

  connect("", (m) => { if (m.type === "overview") showLink(m.overview.status); });
})();
