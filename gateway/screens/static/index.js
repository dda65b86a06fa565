// The list of screens this gateway serves.
"use strict";
(() => {
  const { t, h, $, bar, showLink, connect } = CG;
  bar(t("screensTitle"));
  const box = $("#screens");
  const card = (href, title, sub) => h("a", { class: "card", href }, h("b", {}, title), h("span", {}, sub));
  function render(stations) {
    const cards = [card("/supervisor", t("supervisor"), t("alarms") + " · " + t("link")), card("/lookup", t("lookup"), t("lookupHint"))];
    for (const s of stations) {
      cards.push(card(`/station/${encodeURIComponent(s.id)}`, s.id, `${t("stationScreen")} · ${t("roles")[s.role] || s.role || ""}`));
      if (s.role === "arrival") cards.push(card(`/arrival/${encodeURIComponent(s.id)}`, `${CG.kind("transit")} ${s.id}`, t("arrivalScreen")));
      if (s.gate) cards.push(card(`/gate/${encodeURIComponent(s.id)}`, `${t("gate")} ${s.id}`, t("gateScreen")));
    }
    box.replaceChildren(...cards);
  }
  connect("", (m) => {
    if (m.type === "hello") render(m.stations || []);
    if (m.type === "overview") showLink(m.overview.status);
  });
})();
