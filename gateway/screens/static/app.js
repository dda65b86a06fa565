// cargogate screens: shared code. No build step, no dependencies.
// Every page includes this file, then its own script, which calls
// CG.connect(...) and renders what arrives. Text from the gateway (codes,
// ids, details) is only ever set with textContent.
"use strict";

const CG = (() => {
  // ---- language ---------------------------------------------------------
  const params = new URLSearchParams(location.search);
  let lang = params.get("lang") || localStorage.getItem("cargogate.lang") || "zh";
  if (lang !== "en") lang = "zh";

  const T = {
    zh: {
      brand: "cargogate 海关卡口", pass: "通过", stop: "停止", waiting: "等待扫描",
      waitingTodo: "请扫描条码", recent: "最近 20 次扫描", connLost: "与网关的连接已断开 — 正在重连…",
      connLostIn: (s) => `与网关的连接已断开 — ${s} 秒后重连`, linkOffline: "与海关中心断开 — 按本地放行数据判定",
      linkOn: "海关中心 在线", linkOff: "海关中心 离线", connected: "已连接", disconnected: "未连接",
      sound: "点击开启提示音", lang: "English", offline: "离线判定", ago: (s) => `${s} 秒前`, agoMin: (m) => `${m} 分钟前`,
      lastSignal: "最近信号", gate: "闸机", gateState: { closed: "关闭", opened: "已开启", fault: "故障", unknown: "状态未知", none: "无闸机" },
      gateSub: { closed: "闸机保持关闭", opened: "已发送放行信号（开闸）", fault: "无法控制闸机 — 保持关闭", unknown: "信号可能已送达 — 闸机可能已开启，请现场确认", none: "本站未配置闸机" },
      contents: "内件", items: (n) => `${n} 件`, itemsOf: "件内件", blocking: "拦截原因", noBlocking: "全部内件可通过",
      notContainer: "扫描总包或集装器可查看内件", device: { up: "正常", down: "断开", fault: "故障" },
      devName: { scanner: "扫描枪", gate: "闸机" }, problem: "问题", latency: "判定耗时",
      supervisor: "主管总览", lookup: "查询", stations: "站点", station: "站点", role: "类型",
      roles: { arrival: "运抵", sort: "分拣", gate: "装载闸口" }, scanner: "扫描枪", last: "最近一次扫描",
      hour: "近一小时", hourTitle: "近一小时", alarms: "告警", noAlarms: "无告警", link: "与海关中心的链路",
      online: "在线", offlineW: "离线", since: "自", head: "中心最新序号", watermark: "已应用序号",
      lag: "落后", outbox: "待发事件", oldest: "最早待发", na: "不适用", rejected: "拒收消息", resyncing: "正在补齐",
      byReason: "按原因", screens: "已打开屏幕", clockBehind: "时钟落后", storeSize: "存储大小", latest: "最新扫描（全部站点）",
      alarm: { device_down: "设备故障", link_offline: "海关中心离线", outbox_filling: "待发事件积压",
        clock_trouble: "时钟异常", store_not_writable: "存储无法写入", order_gap: "指令序号缺口（无法应用或未送达）",
        audit_records_lost: "审计记录丢失" },
      lookupTitle: "查询条码", lookupHint: "输入或扫描条码后按回车", lookupBtn: "查询", chain: "判定依据",
      seq: "序号", subject: "对象", what: "内容", order: "指令", office: "关区", ref: "报关单/清单号",
      issued: "签发", expires: "有效至", note: "备注", lookupNote: (seq, on) => `按本地订单库判定（已应用至序号 ${seq}），${on ? "链路在线" : "链路离线"}；查询不会开闸，也不询问中心。`,
      notFound: "本地无此订单记录", error: "查询失败", screensTitle: "屏幕", stationScreen: "站点屏", gateScreen: "闸口屏",
      openScreens: "打开屏幕", decidedAt: "判定时间", dropped: "屏幕漏收",
      sealIgnored: "关锁未记录（无在途转关）", arrivalScreen: "运抵屏", arrivalRow: (e) => `运抵 · 实到 ${e.counted}/${e.expected} · ${e.seals_ok ? "关锁完好" : "关锁异常"}`,
      transitBrief: (b) => `转关 ${b.transit.id} · 已清点 ${b.counted}/${b.expected}`,
    },
    en: {
      brand: "cargogate customs gate", pass: "PASS", stop: "STOP", waiting: "Waiting for a scan",
      waitingTodo: "Scan a code", recent: "Last 20 scans", connLost: "Connection to the gateway lost — reconnecting…",
      connLostIn: (s) => `Connection to the gateway lost — reconnecting in ${s} s`, linkOffline: "Central customs offline — deciding from local releases",
      linkOn: "central online", linkOff: "central OFFLINE", connected: "connected", disconnected: "not connected",
      sound: "click to enable sound", lang: "中文", offline: "decided offline", ago: (s) => `${s} s ago`, agoMin: (m) => `${m} min ago`,
      lastSignal: "last signal", gate: "Gate", gateState: { closed: "CLOSED", opened: "OPENED", fault: "FAULT", unknown: "STATE UNKNOWN", none: "NO GATE" },
      gateSub: { closed: "the gate stays closed", opened: "open signal sent", fault: "the gate cannot be told — it stays closed", unknown: "the signal may have reached the gate — it may be open: check it", none: "no gate at this station" },
      contents: "Contents", items: (n) => `${n} items`, itemsOf: "items inside", blocking: "Blocking", noBlocking: "every item passes",
      notContainer: "scan a bag or ULD to see its contents", device: { up: "up", down: "down", fault: "fault" },
      devName: { scanner: "scanner", gate: "gate" }, problem: "problem", latency: "decided in",
      supervisor: "Supervisor", lookup: "Lookup", stations: "Stations", station: "Station", role: "Role",
      roles: { arrival: "arrival", sort: "sort", gate: "loading gate" }, scanner: "Scanner", last: "Last scan",
      hour: "last hour", hourTitle: "Last hour", alarms: "Alarms", noAlarms: "no alarms", link: "Link to central customs",
      online: "online", offlineW: "OFFLINE", since: "since", head: "central head", watermark: "applied (watermark)",
      lag: "lag", outbox: "outbox (events)", oldest: "oldest event", na: "n/a", rejected: "rejected messages", resyncing: "resyncing",
      byReason: "by reason", screens: "open screens", clockBehind: "clock behind", storeSize: "store size", latest: "Latest scans (all stations)",
      alarm: { device_down: "device down", link_offline: "central offline", outbox_filling: "outbox filling",
        clock_trouble: "clock trouble", store_not_writable: "store not writable", order_gap: "order seq gap (cannot be applied or not delivered)",
        audit_records_lost: "audit records lost" },
      lookupTitle: "Look up a code", lookupHint: "type or scan a code, then Enter", lookupBtn: "Look up", chain: "Decided by",
      seq: "seq", subject: "subject", what: "what", order: "order", office: "office", ref: "declaration ref",
      issued: "issued", expires: "expires", note: "note", lookupNote: (seq, on) => `Decided from the local store (applied up to seq ${seq}), link ${on ? "online" : "offline"}; a lookup opens no gate and does not ask central.`,
      notFound: "order not in the local store", error: "lookup failed", screensTitle: "Screens", stationScreen: "station screen", gateScreen: "gate screen",
      openScreens: "Open a screen", decidedAt: "decided at", dropped: "missed by screens",
      sealIgnored: "seal NOT recorded (no transit open)", arrivalScreen: "arrival screen", arrivalRow: (e) => `arrival · counted ${e.counted}/${e.expected} · seals ${e.seals_ok ? "OK" : "NOT OK"}`,
      transitBrief: (b) => `transit ${b.transit.id} · counted ${b.counted}/${b.expected}`,
    },
  };
  const t = (k, ...a) => { const v = T[lang][k]; return typeof v === "function" ? v(...a) : v; };

  // Reasons in plain words, and what to do (§3 reasons).
  const REASONS = {
    zh: {
      released: ["已放行", "可以装载"],
      "held:inspection": ["海关查验", "送查验通道"],
      "held:do_not_load": ["布控：禁止装载", "移出装载线，交海关"],
      "held:detention": ["海关扣留", "移交海关监管区"],
      "held:information": ["待补充资料", "放到待处理区"],
      "held:other": ["海关扣留", "放到待处理区，联系海关"],
      cancelled: ["申报已撤销（撤单）", "移出货流，不得装载"],
      contents: ["内件未全部放行", "拆袋核对下列内件"],
      revoked: ["放行已撤回", "放到待处理区，交海关"],
      expired: ["放行已过期", "放到待处理区，交海关"],
      unknown: ["无放行记录", "放到待处理区：海关尚未放行"],
      invalid_code: ["条码无效", "重新扫描或手工录入"],
      error: ["网关错误", "放到待处理区并通知 IT"],
    },
    en: {
      released: ["Released", "Load it"],
      "held:inspection": ["Held for inspection", "Take it to the inspection lane"],
      "held:do_not_load": ["Do not load", "Take it off the line, hand it to customs"],
      "held:detention": ["Detained by customs", "Hand it to the customs bonded area"],
      "held:information": ["Held for information", "Put it in the hold area"],
      "held:other": ["Held by customs", "Put it in the hold area, call customs"],
      cancelled: ["Declaration cancelled", "Take it out of the flow: never load it"],
      contents: ["Contents do not all pass", "Open it and check the items listed"],
      revoked: ["Release withdrawn", "Put it aside for customs"],
      expired: ["Release expired", "Put it aside for customs"],
      unknown: ["No release known", "Put it aside: customs has not released it"],
      invalid_code: ["Code not valid", "Scan again or key it in"],
      error: ["Gateway error", "Put it aside and call IT"],
    },
  };
  function reason(r) {
    const table = REASONS[lang];
    if (table[r]) return table[r];
    if (r && r.startsWith("held:")) return table["held:other"];
    return [r || "?", ""];
  }
  const KINDS = {
    zh: { parcel: "包裹", bag: "总包", uld: "集装器", awb: "主运单", transit: "转关", seal: "关锁" },
    en: { parcel: "parcel", bag: "bag", uld: "ULD", awb: "air waybill", transit: "transit", seal: "seal" },
  };
  const kind = (k) => KINDS[lang][k] || k || "";

  // Why a code is invalid: the gateway says it in English (gateway/ident,
  // gateway/station); the Chinese screens say it in Chinese. Every form
  // the gateway produces has a rule; anything else gets a general line,
  // never English inside Chinese text.
  const CHECKED = { "air waybill": "主运单号", "parcel (UPU S10)": "包裹号（UPU S10）", SSCC: "SSCC 总包号" };
  const PROBLEMS_ZH = [
    [/^code too long: (\d+) bytes, at most (\d+)$/, (m) => `条码过长：${m[1]} 字节，最多 ${m[2]} 字节`],
    [/^code longer than (\d+) bytes$/, (m) => `条码超过 ${m[1]} 字节`],
    [/^control byte (0x[0-9A-F]{2}) in the code$/, (m) => `条码含控制字符 ${m[1]}`],
    [/^non-ASCII byte (0x[0-9A-F]{2}) in the code$/, (m) => `条码含非 ASCII 字节 ${m[1]}`],
    [/^empty code$/, () => "空条码"],
    [/^matches a seal pattern but a seal id is 1 to 32 of A-Z, 0-9 and -$/, () => "符合关锁号格式，但关锁号须为 1 至 32 位 A–Z、0–9 或 -"],
    [/^matches a (\w+) pattern but an id is 1 to 64 of A-Z and 0-9$/, (m) => `符合${KINDS.zh[m[1]] || ""}号格式，但编号须为 1 至 64 位 A–Z 或 0–9`],
    [/^not a (\w+) identifier$/, (m) => `不是${KINDS.zh[m[1]] || "有效"}编号`],
    [/^matches no known identifier form$/, () => "不符合任何已知编号格式"],
    [/^GS1 element string holds no SSCC \(AI 00\)$/, () => "GS1 条码中没有 SSCC（AI 00）"],
    [/^GS1 element string: no application identifier at (.*)$/, (m) => `GS1 条码：${m[1]} 处缺少应用标识符（AI）`],
    [/^GS1 element string: AI (\d+) too short$/, (m) => `GS1 条码：AI ${m[1]} 的数据过短`],
    [/^GS1 element string: SSCC \(AI 00\) is not 18 digits$/, () => "GS1 条码：SSCC（AI 00）不是 18 位数字"],
    [/^GS1 element string holds two different SSCCs$/, () => "GS1 条码含两个不同的 SSCC"],
    [/^(air waybill|parcel \(UPU S10\)|SSCC) check digit: expected (.), got (.)$/, (m) => `${CHECKED[m[1]]}校验位错误：应为 ${m[2]}，实为 ${m[3]}`],
    [/^cannot record the decision: /, () => "无法记录判定（网关存储错误）"],
  ];
  function problem(p) {
    if (lang !== "zh" || !p) return p;
    for (const [re, f] of PROBLEMS_ZH) {
      const m = re.exec(p);
      if (m) return f(m);
    }
    return "条码无法识别（详情见英文界面）";
  }
  const ACTIONS = {
    zh: { release: "放行", revoke: "撤回放行", hold: "扣留", unhold: "解除扣留", cancel: "撤单", link: "装入", unlink: "取出", seal: "施封" },
    en: {},
  };
  const action = (a) => ACTIONS[lang][a] || a;

  function setLang(l) {
    localStorage.setItem("cargogate.lang", l);
    const u = new URL(location.href);
    u.searchParams.delete("lang");
    location.replace(u.toString());
  }

  // ---- DOM helpers ------------------------------------------------------
  // h("div", {class: "x", dataset: {a: 1}}, child, "text", ...)
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of kids.flat(Infinity)) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  const $ = (sel) => document.querySelector(sel);
  const pad = (n) => String(n).padStart(2, "0");
  function hms(ts) {
    const d = ts ? new Date(ts) : new Date();
    if (isNaN(d)) return "—";
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function dateTime(ts) {
    const d = new Date(ts);
    if (!ts || isNaN(d) || d.getFullYear() < 2000) return "—";
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms(ts)}`;
  }
  function age(ts) {
    const s = Math.max(0, Math.round((Date.now() - new Date(ts)) / 1000));
    return s < 120 ? t("ago", s) : t("agoMin", Math.round(s / 60));
  }
  function duration(s) {
    s = Math.round(s);
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  }

  // ---- shapes -----------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svg(markup) {
    const e = document.createElementNS(SVG, "svg");
    e.setAttribute("viewBox", "0 0 100 100");
    e.setAttribute("aria-hidden", "true");
    e.innerHTML = markup; // constant markup only
    return e;
  }
  const SHAPES = {
    pass: '<circle cx="50" cy="50" r="44" fill="none" stroke="#fff" stroke-width="9"/><path d="M27 52 L44 68 L74 34" fill="none" stroke="#fff" stroke-width="11" stroke-linecap="round" stroke-linejoin="round"/>',
    stop: '<polygon points="31,4 69,4 96,31 96,69 69,96 31,96 4,69 4,31" fill="#fff"/><path d="M32 32 L68 68 M68 32 L32 68" stroke="#8a2a00" stroke-width="13" stroke-linecap="round"/>',
    passSmall: '<circle cx="50" cy="50" r="48" fill="#009e73"/><path d="M26 52 L43 68 L75 34" fill="none" stroke="#fff" stroke-width="13" stroke-linecap="round" stroke-linejoin="round"/>',
    stopSmall: '<polygon points="30,2 70,2 98,30 98,70 70,98 30,98 2,70 2,30" fill="#d55e00"/><path d="M32 32 L68 68 M68 32 L32 68" stroke="#fff" stroke-width="14" stroke-linecap="round"/>',
    none: '<rect x="10" y="10" width="80" height="80" rx="14" fill="none" stroke="#fff" stroke-width="6" stroke-dasharray="12 10"/>',
    closed: '<rect x="8" y="30" width="18" height="66" rx="3" fill="#fff"/><rect x="4" y="90" width="26" height="8" fill="#fff"/><rect x="22" y="34" width="74" height="14" rx="4" fill="#fff"/><rect x="40" y="34" width="12" height="14" fill="#c43d00"/><rect x="68" y="34" width="12" height="14" fill="#c43d00"/>',
    opened: '<rect x="8" y="30" width="18" height="66" rx="3" fill="#7fe0c4"/><rect x="4" y="90" width="26" height="8" fill="#7fe0c4"/><rect x="22" y="2" width="14" height="40" rx="4" fill="#7fe0c4"/>',
    fault: '<polygon points="50,6 96,92 4,92" fill="#000"/><rect x="45" y="34" width="10" height="32" fill="#e69f00"/><rect x="45" y="72" width="10" height="10" fill="#e69f00"/>',
    // Arrival screen: a warning triangle (a foreign seal, an extra item)
    // and a dashed empty square (not seen, not counted).
    warnSmall: '<polygon points="50,3 98,94 2,94" fill="#e69f00" stroke="#000" stroke-width="5" stroke-linejoin="round"/><rect x="44" y="32" width="12" height="34" fill="#000"/><rect x="44" y="73" width="12" height="12" fill="#000"/>',
    pendingSmall: '<rect x="9" y="9" width="82" height="82" rx="12" fill="none" stroke="#fff" stroke-width="10" stroke-dasharray="18 11"/>',
  };
  const shape = (k) => svg(SHAPES[k] || SHAPES.none);

  // ---- the verdict block (station, gate and lookup screens) ---------------
  // o: {pass, reason, code, subject, problem, offline, at, gate, latency_ns}
  function renderVerdict(box, o, opts = {}) {
    box.replaceChildren();
    if (!o) {
      box.dataset.verdict = "none";
      box.append(h("div", { class: "sign" }, shape("none")), h("div", { class: "word" }, t("waiting")),
        h("div", { class: "reason" }, ""), h("div", { class: "todo" }, t("waitingTodo")));
      return;
    }
    const v = o.pass ? "pass" : "stop";
    box.dataset.verdict = v;
    const [what, todo] = reason(o.reason);
    const word = h("div", { class: "word" }, t(v));
    if (lang !== "en") word.append(h("small", {}, v.toUpperCase()));
    const code = h("div", { class: "code" }, o.code || "",
      o.subject ? h("span", { class: "kind" }, " · ", kind(o.subject.kind)) : null);
    if (!opts.noAge && o.at) code.append(h("span", { class: "age", dataset: { at: o.at } }, hms(o.at), " · ", age(o.at)));
    const notes = h("div", { class: "notes" });
    if (o.problem) notes.append(h("span", { class: "warn" }, `${t("problem")}${lang === "zh" ? "：" : ": "}${problem(o.problem)}`));
    if (o.offline) notes.append(h("span", { class: "warn" }, t("offline")));
    if (o.gate === "fault") notes.append(h("span", { class: "warn" }, `${t("gate")}: ${t("gateState").fault}`));
    if (o.gate === "unknown") notes.append(h("span", { class: "warn" }, `${t("gate")}: ${t("gateState").unknown}`));
    if (o.latency_ns) notes.append(h("span", {}, `${t("latency")} ${(o.latency_ns / 1e6).toFixed(1)} ${lang === "zh" ? "毫秒" : "ms"}`));
    box.append(h("div", { class: "sign" }, shape(v)), word, h("div", { class: "reason" }, what),
      h("div", { class: "todo" }, todo), code, notes);
    box.classList.remove("flash", "stale");
    if (opts.flash) { void box.offsetWidth; box.classList.add("flash"); }
  }

  // A row of a list of scans.
  // A seal scan (not decided) and a transit closing (Kind "seal" and
  // "arrival") are listed without a verdict: they are never a STOP.
  function scanRow(o, compact) {
    const v = o.kind === "seal" ? "seal" : o.kind === "arrival" ? "arrival" : o.pass ? "pass" : "stop";
    let code = o.code || o.seal || "", what;
    if (v === "seal") what = o.reason === "seal_not_recorded" ? t("sealIgnored") : kind("seal");
    else if (v === "arrival") {
      code = (o.subject && o.subject.id) || code;
      what = o.arrival ? t("arrivalRow", o.arrival) : t("roles").arrival;
    } else what = reason(o.reason)[0];
    const word = v === "pass" || v === "stop" ? t(v) : "·";
    const icon = v === "pass" ? shape("passSmall") : v === "stop" ? shape("stopSmall") : null;
    const kids = [h("span", { class: "t" }, hms(o.at)), h("span", { class: "v" }, icon, word)];
    if (compact) kids.push(h("span", { class: "c" }, o.station || ""));
    kids.push(h("span", { class: "c" }, code, h("small", {}, what)));
    return h("li", { class: v, dataset: { event: o.event_id || "", code } }, ...kids);
  }

  // ---- sound --------------------------------------------------------------
  let audio = null;
  function audioCtx() {
    if (!audio) { try { audio = new AudioContext(); } catch (e) { audio = null; } }
    return audio;
  }
  // beep plays two short low tones: the STOP cue.
  function beep() {
    document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    const ac = audioCtx();
    if (!ac) return;
    if (ac.state === "suspended") ac.resume().catch(() => {});
    const now = ac.currentTime;
    for (const [start, f] of [[0, 660], [0.22, 440]]) {
      const o = ac.createOscillator(), g = ac.createGain();
      o.type = "square"; o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, now + start);
      g.gain.exponentialRampToValueAtTime(0.3, now + start + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.18);
      o.connect(g).connect(ac.destination);
      o.start(now + start); o.stop(now + start + 0.2);
    }
  }
  // soundButton shows a button while the browser keeps audio suspended
  // (autoplay policy: a kiosk can start Chromium with
  // --autoplay-policy=no-user-gesture-required instead).
  function soundButton(btn) {
    const check = () => {
      const ac = audioCtx();
      btn.classList.toggle("hidden", !ac || ac.state === "running");
    };
    btn.textContent = t("sound");
    btn.addEventListener("click", () => { const ac = audioCtx(); if (ac) ac.resume().then(check); });
    check();
    setInterval(check, 2000);
  }

  // ---- the top bar -------------------------------------------------------
  // bar puts the top bar on the page; sound: the page beeps on STOP.
  function bar(title, sound) {
    const link = h("span", { class: "pill", id: "linkpill" }, "…");
    const conn = h("span", { class: "pill", id: "connpill" }, "…");
    const clock = h("span", { class: "clock" }, hms());
    setInterval(() => { clock.textContent = hms(); }, 1000);
    const langBtn = h("button", { id: "langbtn", onclick: () => setLang(lang === "en" ? "zh" : "en") }, t("lang"));
    const snd = sound ? h("button", { id: "soundbtn", class: "hidden" }) : null;
    const b = h("header", { class: "bar" }, h("a", { class: "brand", href: "/" }, "cargogate"),
      h("span", { class: "title" }, title), h("span", { class: "sp" }), link, conn, snd, clock, langBtn);
    document.body.prepend(b,
      h("div", { class: "banner conn", id: "connbanner" }, t("connLost")),
      h("div", { class: "banner link" }, t("linkOffline")));
    if (snd) soundButton(snd);
  }
  function showLink(status) {
    const l = (status && status.link) || null;
    const p = $("#linkpill");
    if (!l) return;
    document.body.dataset.link = l.online ? "online" : "offline";
    if (p) {
      p.className = "pill " + (l.online ? "ok" : "bad");
      p.textContent = l.online ? t("linkOn") : `${t("linkOff")} ${t("since")} ${hms(l.since)}`;
    }
  }

  // ---- the WebSocket --------------------------------------------------------
  // connect keeps one WebSocket open to the gateway, reconnecting with a
  // capped, jittered backoff (250 ms doubling to 5 s) after a close, and
  // closing a connection that has been silent for 5 s (the gateway sends
  // the overview every second), so a gateway restart or a pulled cable is
  // noticed. onMessage gets every parsed message.
  function connect(station, onMessage) {
    let backoff = 250, ws = null, lastMsg = 0, retryAt = 0;
    const body = document.body;
    const setState = (s) => {
      body.dataset.ws = s;
      const p = $("#connpill");
      if (p) { p.className = "pill " + (s === "open" ? "ok" : "bad"); p.textContent = s === "open" ? t("connected") : t("disconnected"); }
    };
    const open = () => {
      setState("connecting");
      const u = new URL("/ws", location.href);
      u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
      if (station) u.searchParams.set("station", station);
      ws = new WebSocket(u);
      lastMsg = Date.now();
      ws.onopen = () => { setState("open"); };
      ws.onmessage = (ev) => {
        lastMsg = Date.now();
        backoff = 250;
        let m;
        try { m = JSON.parse(ev.data); } catch (e) { return; }
        onMessage(m);
      };
      ws.onclose = () => {
        ws = null;
        setState("closed");
        const wait = Math.round(backoff * (0.5 + Math.random()));
        backoff = Math.min(backoff * 2, 5000);
        retryAt = Date.now() + wait;
        body.dataset.reconnects = String(Number(body.dataset.reconnects || 0) + 1);
        setTimeout(open, wait);
      };
    };
    setInterval(() => {
      if (ws && ws.readyState === WebSocket.OPEN && Date.now() - lastMsg > 5000) ws.close();
      const b = $("#connbanner");
      if (b && !ws) b.textContent = t("connLostIn", Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)));
      else if (b) b.textContent = t("connLost");
    }, 1000);
    open();
  }

  // Pages that show ages refresh them every second.
  setInterval(() => {
    for (const e of document.querySelectorAll("[data-at]")) e.textContent = `${hms(e.dataset.at)} · ${age(e.dataset.at)}`;
  }, 1000);

  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  return { lang, t, reason, kind, action, problem, h, $, hms, dateTime, age, duration, shape, renderVerdict, scanRow, beep, bar, showLink, connect };
})();
