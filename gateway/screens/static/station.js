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

  // At an arrival station: the open transit, its seals and contents.
  function transit(o) {
    const tr = o.transit;
    const old = $("#transit");
    if (old) old.remove();
    if (!tr || !tr.transit) return;
    const seals = `${(tr.seals_seen || []).length}/${(tr.seals_expected || []).length}`;
    const counted = `${tr.counted_ok || 0}/${tr.expected || 0}`;
    const notes = box.querySelector(".notes") || box;
    notes.append(h("span", { id: "transit" }, `${CG.kind("transit")} ${tr.transit.id} · ${CG.kind("seal")} ${seals} · ${t("contents")} ${counted}`));
  }

  function show(o, live) {
    if (o.kind === "seal" || o.kind === "arrival") {
      recent.unshift(o);
      transit(o);
    } else {
      last = o;
      recent.unshift(o);
      renderVerdict(box, o, { flash: live });
      box.dataset.event = o.event_id || "";
      transit(o);
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
        renderVerdict(box, null);
        for (const o of m.recent || []) show(o, false);
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
