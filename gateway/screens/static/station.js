// Station screen: the last decision, huge, and the last 20 scans.
"use strict";
(() => {
  const { t, h, $, renderVerdict, scanRow, beep, bar, showLink, connect } = CG;
  const id = decodeURIComponent(location.pathname.split("/")[2] || "");
  document.title = `${id} · cargogate`;
  bar(id, true);
  $("#recent-title").textContent = t("recent");
  const box = $("#verdict");
  const list = $("#recent");
  let recent = [], last = null;

  // At an arrival station: the open transit in one line, and a link to
  // the arrival screen, which shows it whole.
  let tstate = null, role = "";
  function transit() {
    const old = $("#transit");
    if (old) old.remove();
    const tr = tstate && tstate.transit;
    if (!tr || !tr.transit) return;
    const foreign = (tr.foreign || []).length;
    const seals = `${(tr.seals_seen || []).length - foreign}/${(tr.seals_expected || []).length}`;
    const counted = `${tr.counted_ok || 0}/${tr.expected || 0}`;
    const notes = box.querySelector(".notes") || box;
    notes.append(h("span", { id: "transit" }, `${CG.kind("transit")} ${tr.transit.id} · ${CG.kind("seal")} ${seals} · ${t("contents")} ${counted}`));
  }
  function arrivalLink() {
    const old = $("#arrival-link");
    if (old) old.remove();
    if (role !== "arrival") return;
    $("#recent-title").append(h("a", { id: "arrival-link", href: `/arrival/${encodeURIComponent(id)}${location.search}` }, ` · ${t("arrivalScreen")} ➜`));
  }

  function show(o, live) {
    if (o.kind === "seal" || o.kind === "arrival") {
      recent.unshift(o);
    } else {
      last = o;
      recent.unshift(o);
      renderVerdict(box, o, { flash: live });
      box.dataset.event = o.event_id || "";
      transit();
      if (live) {
        document.body.dataset.scans = String(Number(document.body.dataset.scans || 0) + 1);
        document.body.dataset.lastAt = String(Date.now()); // when the last scan reached this screen
        if (!o.pass) beep();
      }
    }
    recent = recent.slice(0, 20);
    list.replaceChildren(...recent.map((r) => scanRow(r)));
  }

  renderVerdict(box, null);
  // A decision left on screen is dimmed after 20 s, so that an old PASS is
  // not read as the verdict on the next item.
  setInterval(() => {
    if (last && Date.now() - new Date(last.at) > 20000) box.classList.add("stale");
  }, 1000);

  connect(id, (m) => {
    switch (m.type) {
      case "hello":
        recent = [];
        last = null;
        role = (m.station && m.station.role) || "";
        tstate = m.arrival || null;
        arrivalLink();
        renderVerdict(box, null);
        for (const o of m.recent || []) show(o, false);
        transit();
        break;
      case "transit":
        if (m.station !== id) break;
        tstate = m;
        transit();
        break;
      case "decision":
        if (m.outcome.station === id) show(m.outcome, true);
        break;
      case "overview":
        showLink(m.overview.status);
        break;
    }
  });
})();
