// cargogate handheld page. The device's scanner types the code and Enter
// into the input, which keeps the focus. Each code is sent over the
// WebSocket with an id made here; the gateway decides, journals and
// answers. The page never decides: not connected, it refuses the scan.
// A scan whose answer was lost (Wi-Fi) is sent again with the same id on
// reconnecting, and the gateway answers it with the first decision.
"use strict";
(() => {
  const { h, $, t, reason, problem, kind } = CG;
  const station = decodeURIComponent(location.pathname.split("/")[2] || "");
  const body = document.body, input = $("#code"), box = $("#verdict"), form = $("#form");
  const en = CG.lang === "en";
  const L = en
    ? { waiting: "Scan a code", checking: "Checking…", notConnected: "not connected: scan again", connected: "connected", disconnected: "not connected",
        noAnswer: "no answer: scan again", refused: "not decided: scan again", seal: "Seal recorded", sealTodo: "Scan the next seal or item",
        sealIgnored: "Seal NOT recorded", sealIgnoredTodo: "No transit open here: scan the transit document first, then the seal" }
    : { waiting: "请扫描条码", checking: "判定中…", notConnected: "未连接：请重新扫描", connected: "已连接", disconnected: "未连接",
        noAnswer: "网关无应答：请重新扫描", refused: "未判定：请重新扫描", seal: "关锁已记录", sealTodo: "继续扫描关锁或内件",
        sealIgnored: "关锁未记录", sealIgnoredTodo: "本站无在途转关：请先扫描转关单，再扫关锁" };
  $("#station").textContent = station;
  let ws = null, pending = null, answerTimer = 0, backoff = 250, lastMsg = 0;

  // ---- focus: always on the input ---------------------------------------
  const refocus = () => { if (document.activeElement !== input) input.focus({ preventScroll: true }); };
  input.addEventListener("blur", () => setTimeout(refocus, 0));
  document.addEventListener("click", refocus);
  document.addEventListener("visibilitychange", refocus);
  $("#kbd").addEventListener("click", (e) => {
    e.preventDefault();
    input.inputMode = input.inputMode === "none" ? "text" : "none"; // the soft keyboard for keying a code in
    input.blur(); refocus();
  });

  // ---- sound and vibration --------------------------------------------------
  let audio = null;
  function tones(list) {
    try { audio = audio || new AudioContext(); } catch (e) { return; }
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const now = audio.currentTime;
    for (const [start, f, len, type] of list) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.type = type; o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, now + start);
      g.gain.exponentialRampToValueAtTime(0.35, now + start + 0.01);
      g.gain.exponentialRampToValueAtTime(0.0001, now + start + len);
      o.connect(g).connect(audio.destination);
      o.start(now + start); o.stop(now + start + len + 0.02);
    }
  }
  const buzz = (p) => { try { if (navigator.vibrate) navigator.vibrate(p); } catch (e) { /* not allowed */ } };
  function cue(v) {
    body.dataset.cue = v;
    body.dataset.cues = String(Number(body.dataset.cues || 0) + 1);
    if (v === "pass") { tones([[0, 1320, 0.12, "sine"]]); buzz(80); }
    else if (v === "stop") { tones([[0, 520, 0.25, "square"], [0.3, 350, 0.35, "square"]]); buzz([300, 120, 300]); }
    else { tones([[0, 300, 0.15, "sawtooth"], [0.2, 300, 0.15, "sawtooth"], [0.4, 300, 0.15, "sawtooth"]]); buzz([100, 60, 100, 60, 100]); }
  }

  // ---- what the page shows --------------------------------------------------
  function show(v, kids, data) {
    box.dataset.verdict = v;
    for (const k of ["event", "repeat", "code", "reason"]) delete box.dataset[k];
    Object.assign(box.dataset, data || {});
    box.replaceChildren(...kids);
  }
  function waiting() { show("waiting", [h("div", { class: "word" }, L.waiting)]); }
  // Both languages for what the page itself says: the floor reads either.
  const EN = { notConnected: "not connected: scan again", noAnswer: "no answer: scan again", refused: "not decided: scan again" };
  const ZH = { notConnected: "未连接：请重新扫描", noAnswer: "网关无应答：请重新扫描", refused: "未判定：请重新扫描" };
  function notice(v, key, code, why) {
    const other = en ? ZH[key] : EN[key];
    show(v, [h("div", { class: "sign" }, "⚠"), h("div", { class: "word2" }, L[key] + (why ? ` (${why})` : "")),
      h("div", { class: "todo" }, other), code ? h("div", { class: "code" }, code) : ""], { code: code || "" });
    cue("refused");
  }
  function verdict(o, repeat) {
    if (o.kind === "seal" && o.reason === "seal_not_recorded") {
      show("refused", [h("div", { class: "sign" }, "⚠"), h("div", { class: "word2" }, L.sealIgnored), h("div", { class: "todo" }, L.sealIgnoredTodo),
        h("div", { class: "code" }, o.seal || o.code || "")], { event: o.event_id || "", code: o.code || "" });
      cue("refused");
      return;
    }
    if (o.kind === "seal") {
      show("seal", [h("div", { class: "word2" }, L.seal), h("div", { class: "todo" }, L.sealTodo), h("div", { class: "code" }, o.seal || o.code || "")],
        { event: o.event_id || "", code: o.code || "" });
      cue("pass");
      return;
    }
    const v = o.pass ? "pass" : "stop";
    const [what, todo] = reason(o.reason);
    const notes = [];
    if (o.subject && o.subject.kind) notes.push(kind(o.subject.kind));
    if (o.problem) notes.push(problem(o.problem));
    if (o.offline) notes.push(t("offline"));
    show(v, [
      h("div", { class: "sign" }, o.pass ? "✔" : "✖"),
      h("div", { class: "word" }, o.pass ? "通过" : "停止"),
      h("div", { class: "word2" }, o.pass ? "PASS" : "STOP"),
      h("div", { class: "reason" }, what),
      h("div", { class: "todo" }, todo),
      h("div", { class: "code" }, o.code || ""),
      notes.length ? h("div", { class: "note" }, notes.join(" · ")) : "",
    ], { event: o.event_id || "", repeat: String(!!repeat), code: o.code || "", reason: o.reason || "" });
    cue(v);
  }

  // The open transit at an arrival station: its seals and counts.
  function transit(st) {
    const el = $("#transit");
    const tr = st && st.transit;
    if (!st || (!tr && !st.arrival)) { el.classList.add("hidden"); return; }
    el.classList.remove("hidden");
    if (!tr) { el.replaceChildren(h("h3", {}, en ? "No transit open: scan a transit manifest" : "无转关：请扫描转关单")); return; }
    const exp = tr.seals_expected || [], seen = tr.seals_seen || [], foreign = tr.foreign || [];
    const stopped = (st.stopped || []).length, missing = (tr.missing || []).length, extra = (tr.extra || []).length;
    const seals = exp.map((s) => h("li", { class: seen.includes(s) ? "ok" : "bad" }, `${s} · ${seen.includes(s) ? (en ? "seen" : "已见") : (en ? "not seen" : "未见")}`));
    for (const s of foreign) seals.push(h("li", { class: "bad" }, `${s} · ${en ? "FOREIGN" : "非本车"}`));
    el.replaceChildren(
      h("h3", {}, `${en ? "Transit" : "转关"} ${tr.transit ? tr.transit.id : ""}`),
      h("div", { class: "big", id: "count", dataset: { counted: String(tr.counted_ok || 0), expected: String(tr.expected || 0) } },
        `${tr.counted_ok || 0} / ${tr.expected || 0}`),
      h("div", {}, [missing ? `${en ? "missing" : "缺"} ${missing}` : "", extra ? `${en ? "extra" : "多"} ${extra}` : "",
        stopped ? `${en ? "stopped" : "停止"} ${stopped}` : ""].filter(Boolean).join(" · ")),
      h("div", { id: "seals", dataset: { seen: String(seen.filter((s) => exp.includes(s)).length), expected: String(exp.length) } },
        `${en ? "Seals" : "关锁"} ${seen.filter((s) => exp.includes(s)).length}/${exp.length}` + (tr.sealed ? "" : (en ? " · no seal order" : " · 无施封指令"))),
      h("ul", {}, ...seals));
  }

  // ---- the WebSocket ---------------------------------------------------------
  const setState = (s) => {
    body.dataset.ws = s;
    $("#conn").textContent = s === "open" ? L.connected : L.disconnected;
  };
  function send(p) {
    ws.send(JSON.stringify({ type: "scan", id: p.id, code: p.code }));
    clearTimeout(answerTimer);
    answerTimer = setTimeout(() => {
      if (pending === p) notice("refused", "noAnswer", p.code); // kept: the same code scanned again reuses its id
    }, 12000);
  }
  function open() {
    setState("connecting");
    const u = new URL(`/h/${encodeURIComponent(station)}/ws`, location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const sock = new WebSocket(u);
    ws = sock;
    lastMsg = Date.now();
    sock.onmessage = (ev) => {
      lastMsg = Date.now();
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "hello") {
        backoff = 250;
        setState("open");
        transit(m.arrival);
        // Only the "not connected" shown at the drop is cleared: a scan
        // refused while offline keeps its "scan again".
        if (box.dataset.reason === "disconnected" && !pending) waiting();
        // A scan sent before the connection dropped, unanswered: sent again
        // with its id, so the gateway answers the first decision.
        if (pending) { body.dataset.resent = String(Number(body.dataset.resent || 0) + 1); send(pending); }
      } else if (m.type === "transit") {
        transit(m);
      } else if (m.type === "answer") {
        if (!pending || m.id !== pending.id) return; // an older scan's answer
        clearTimeout(answerTimer);
        if (m.pending) {
          // The gateway has the scan, maybe decided: kept, so the same
          // code scanned again reuses its id and gets that decision.
          notice("refused", "noAnswer", pending.code);
          return;
        }
        const p = pending;
        pending = null;
        body.dataset.answers = String(Number(body.dataset.answers || 0) + 1);
        if (m.outcome) verdict(m.outcome, m.repeat);
        else notice("refused", "refused", p.code, m.refused);
      }
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      setState("closed");
      // The last verdict is not left on the screen while not connected: a
      // PASS glanced at then would be a stale one.
      if (box.dataset.verdict !== "offline") {
        show("offline", [h("div", { class: "sign" }, "⚠"), h("div", { class: "word2" }, L.disconnected),
          h("div", { class: "todo" }, `${EN.notConnected} · ${ZH.notConnected}`)], { reason: "disconnected" });
      }
      body.dataset.reconnects = String(Number(body.dataset.reconnects || 0) + 1);
      const wait = Math.round(backoff * (0.5 + Math.random()));
      backoff = Math.min(backoff * 2, 5000);
      setTimeout(open, wait);
    };
  }
  // A connection silent for 25 s (the gateway pings every 10 s, and pushes
  // the station's messages) is taken as dropped.
  setInterval(() => { if (ws && ws.readyState === WebSocket.OPEN && Date.now() - lastMsg > 25000) ws.close(); }, 1000);

  function newID() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b); // crypto.randomUUID needs a secure context; this does not
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const code = input.value.trim();
    input.value = "";
    refocus();
    if (!code) return;
    if (!ws || ws.readyState !== WebSocket.OPEN || body.dataset.ws !== "open") {
      notice("offline", "notConnected", code); // never decided here
      return;
    }
    // The same code scanned again while its answer is missing: the same id.
    const p = pending && pending.code === code ? pending : { id: newID(), code };
    pending = p;
    show("checking", [h("div", { class: "word" }, L.checking), h("div", { class: "code" }, code)], { code });
    send(p);
  });

  waiting();
  open();
  refocus();
})();
