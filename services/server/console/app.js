// The console: one script, no framework, no build step. Every text from the
// service or the user is put in the page with textContent or text nodes, never
// parsed as HTML; the key lives in sessionStorage and only ever travels in the
// Authorization header.
"use strict";

const KEY = "triage.key";
const LABELS = { violence: "暴力倾向", retaliation: "报复过激", self_harm: "自伤自杀", collective: "群体性及越级", livelihood: "民生福祉" };
const LEVELS = { blue: "蓝", yellow: "黄", orange: "橙", red: "红" };
const LEVEL_ORDER = ["blue", "yellow", "orange", "red"];
const KINDS = {
  threat: ["ev-threat", "威胁/意图"], mention: ["ev-mention", "伴随词"], topic: ["ev-topic", "民生事项"],
  specific_time: ["ev-specific", "具体时间"], specific_means: ["ev-specific", "具体手段"],
  specific_gathering: ["ev-specific", "聚集"], specific_in_progress: ["ev-specific", "正在发生"],
  specific_place: ["ev-specific", "具体地点"], vague_warning: ["ev-other", "模糊警告"],
  repeat: ["ev-other", "重复反映"], survival: ["ev-other", "生存困境"],
};
const COLORS = ["#c0392b", "#8e44ad", "#2c3e50", "#d35400", "#27ae60"];
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
let me = null;

// ---------- DOM helpers: text only ----------

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const pct = (x) => (x * 100).toFixed(1) + "%";
const num = (x) => Number(x).toFixed(3);
const labelZh = (l) => LABELS[l] || l;
const levelBadge = (l) => el("span", { class: "level level-" + (LEVELS[l] ? l : "blue"), text: (LEVELS[l] || l) + "色" });
const chips = (labels, shared) =>
  el("span", {}, ...labels.map((l) => el("span", { class: "chip" + (shared && shared.includes(l) ? " shared" : ""), text: labelZh(l) })));

function showError(msg) {
  $("error").textContent = msg || "";
}

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, contentType) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY) };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = contentType ? body : JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload, cache: "no-store" });
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(r.status, e.code || "http_" + r.status, e.message || "HTTP " + r.status);
  }
  return data;
}

function explain(e) {
  if (!(e instanceof ApiError)) return "请求失败：" + e.message;
  const known = {
    unauthorized: "密钥无效，请重新登录。", forbidden: "此密钥的角色无权执行该操作。",
    overloaded: "服务繁忙，请稍后重试。", text_too_long: "文本超过 5000 字。", empty_text: "文本为空。",
    unknown_case: "案件不存在。", too_many_evals: "评估任务已满，请等待正在进行的任务完成。",
    payload_too_large: "文件过大。", invalid_date: "日期格式不正确。",
  };
  if (e.code === "invalid_line") {
    const m = /^line (\d+): (.*)$/s.exec(e.message);
    if (m) return "第 " + m[1] + " 行格式错误：" + m[2];
  }
  return (known[e.code] || "出错了") + "（" + e.code + "）" + (known[e.code] ? "" : "：" + e.message);
}

async function guarded(f) {
  showError("");
  try {
    await f();
  } catch (e) {
    showError(explain(e));
    if (e instanceof ApiError && e.code === "unauthorized") signOut();
  }
}

// ---------- sign in and pages ----------

const may = (p) => !!me && me.permissions.includes(p);

function show(page) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "page-" + page;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.page === page);
  if (page === "evaluate") guarded(loadHistory);
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    me = await api("GET", "/v1/whoami");
  } catch (e) {
    sessionStorage.removeItem(KEY);
    me = null;
    throw e;
  }
  $("who").textContent = me.name + "（" + me.role + "）";
  $("signout").hidden = false;
  $("nav").hidden = false;
  $("tab-triage").hidden = !may("triage");
  $("tab-search").hidden = !may("search");
  $("tab-evaluate").hidden = !may("evaluate");
  const first = ["triage", "search", "evaluate"].find((p) => may(p));
  show(first || "noaccess");
}

function signOut() {
  sessionStorage.removeItem(KEY);
  me = null;
  $("who").textContent = "";
  $("signout").hidden = true;
  $("nav").hidden = true;
  show("signin");
}

// ---------- text with highlighted spans ----------

// Spans are char (code point) offsets, end exclusive; JS strings index UTF-16
// units, so the text is split into code points first.
function highlighted(text, spans) {
  const chars = Array.from(text);
  const cover = new Array(chars.length).fill(null);
  for (const s of spans) for (let i = s.start; i < Math.min(s.end, chars.length); i++) if (!cover[i]) cover[i] = s;
  const box = el("span");
  let i = 0;
  while (i < chars.length) {
    let j = i;
    while (j < chars.length && cover[j] === cover[i]) j++;
    const piece = chars.slice(i, j).join("");
    const s = cover[i];
    box.append(s ? el("mark", { class: s.cls, title: s.title, text: piece }) : document.createTextNode(piece));
    i = j;
  }
  return box;
}

function evidenceSpans(evidence) {
  return evidence.map((e) => {
    const [cls, kind] = KINDS[e.kind] || ["ev-other", e.kind];
    return { start: e.start, end: e.end, cls, title: kind + (e.label ? " · " + labelZh(e.label) : "") + "：" + e.cue };
  });
}

// Runs of two or more characters of `text` that also occur in `query`
// (character bigrams: Chinese has no spaces to split words on).
function sharedSpans(query, text) {
  const q = Array.from(query);
  const word = (c) => /[\p{L}\p{N}]/u.test(c);
  const grams = new Set();
  for (let i = 0; i + 1 < q.length; i++) if (word(q[i]) && word(q[i + 1])) grams.add(q[i] + q[i + 1]);
  const t = Array.from(text);
  const on = new Array(t.length).fill(false);
  for (let i = 0; i + 1 < t.length; i++) if (grams.has(t[i] + t[i + 1])) on[i] = on[i + 1] = true;
  const spans = [];
  for (let i = 0; i < t.length; ) {
    if (!on[i]) { i++; continue; }
    let j = i;
    while (j < t.length && on[j]) j++;
    spans.push({ start: i, end: j, cls: "shared", title: "共同词语", term: t.slice(i, j).join("") });
    i = j;
  }
  return spans;
}

// Every occurrence of the given words in text, longest word first where they overlap.
function termSpans(words, text) {
  const t = Array.from(text);
  const cover = new Array(t.length).fill(false);
  const spans = [];
  for (const w of [...words].sort((a, b) => b.length - a.length)) {
    const wc = Array.from(w);
    for (let i = 0; i + wc.length <= t.length; i++) {
      let hit = true;
      for (let k = 0; k < wc.length && hit; k++) hit = t[i + k] === wc[k] && !cover[i + k];
      if (!hit) continue;
      for (let k = 0; k < wc.length; k++) cover[i + k] = true;
      spans.push({ start: i, end: i + wc.length, cls: "shared", title: "共同词语", term: w });
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

// ---------- triage ----------

function dateField(id) {
  const v = $(id).value;
  return v ? v : undefined;
}

async function runTriage() {
  const text = $("triage-input").value;
  const context = {
    district: $("triage-district").value.trim() || undefined,
    reporter: $("triage-reporter").value.trim() || undefined,
    received_at: dateField("triage-received"),
    accepted_at: dateField("triage-accepted"),
    met_at: dateField("triage-met"),
    resolved_at: dateField("triage-resolved"),
    closed_at: dateField("triage-closed"),
  };
  const body = { text };
  if (Object.values(context).some((v) => v !== undefined)) body.context = context;
  const caseId = $("triage-case-id").value.trim();
  if (caseId) body.case_id = caseId;
  if ($("triage-store").checked) body.store = true;
  $("triage-submit").disabled = true;
  try {
    const r = await api("POST", "/v1/triage", body);
    renderTriage(text, r);
  } finally {
    $("triage-submit").disabled = false;
  }
}

function renderTriage(text, r) {
  $("triage-result").hidden = false;
  const level = clear($("triage-level"));
  level.className = "level level-" + r.level;
  level.textContent = "风险等级：" + (LEVELS[r.level] || r.level) + "色";
  $("triage-base").textContent = r.base_level !== r.level ? "文本本身判为" + LEVELS[r.base_level] + "色，经规则提级" : "";
  $("triage-model").textContent = "模型 " + r.model_version + (r.stored ? " · 已存入案件库" : "");
  clear($("triage-text")).append(highlighted(text, evidenceSpans(r.evidence)));
  const legend = clear($("triage-legend"));
  const seen = new Set();
  for (const e of r.evidence) {
    const [cls, kind] = KINDS[e.kind] || ["ev-other", e.kind];
    if (seen.has(kind)) continue;
    seen.add(kind);
    legend.append(el("span", {}, el("mark", { class: cls, text: kind })));
  }
  const labels = clear($("triage-labels"));
  labels.append(el("tr", {}, ...["标签", "得分", "", "阈值", "是否命中"].map((h) => el("th", { text: h }))));
  for (const l of r.labels) {
    labels.append(
      el("tr", { class: "label-row" },
        el("td", { text: labelZh(l.label) }),
        el("td", { class: "num", text: num(l.score) }),
        el("td", {}, el("meter", { min: 0, max: 1, low: l.threshold, high: l.threshold, optimum: 0, value: l.score, title: "阈值 " + num(l.threshold) })),
        el("td", { class: "num", text: num(l.threshold) }),
        el("td", { class: l.flagged ? "flag-yes" : "", text: l.flagged ? "命中" : "—" })));
  }
  const reasons = clear($("triage-reasons"));
  for (const x of r.reasons) reasons.append(el("li", { text: x }));
  const esc = clear($("triage-escalations"));
  if (!r.escalations.length) esc.append(el("p", { class: "muted", text: "未触发提级规则。" }));
  for (const e of r.escalations) {
    esc.append(
      el("div", { class: "escalation" },
        el("div", {}, levelBadge(e.from), " → ", levelBadge(e.to), " 规则 ", el("code", { text: e.rule }), e.risk ? "（风险规则）" : "（时限规则）"),
        el("div", { text: e.reason }),
        e.case_ids.length ? el("div", {}, "依据的既往案件：", ...e.case_ids.map(caseLink)) : null));
  }
  const sim = clear($("triage-similar"));
  if (!r.similar.length) sim.append(el("p", { class: "muted", text: "没有足够相似的既往案件。" }));
  else {
    const t = el("table", {}, el("tr", {}, ...["案件", "相似度", "等级", "标签", "区县", "登记时间", ""].map((h) => el("th", { text: h }))));
    for (const c of r.similar) {
      t.append(el("tr", {},
        el("td", {}, caseLink(c.case_id)),
        el("td", { class: "num", text: num(c.score) }),
        el("td", {}, levelBadge(c.level)),
        el("td", {}, chips(c.labels)),
        el("td", { text: c.district || "" }),
        el("td", { text: c.received_at ? c.received_at.slice(0, 10) : "" }),
        el("td", { text: c.same_reporter ? "同一反映人" : "" })));
    }
    sim.append(t);
  }
}

// A case id: a button that opens the case where the role may read cases, plain text otherwise.
function caseLink(id) {
  if (!may("read")) return el("code", { class: "case-id", text: id + " " });
  return el("button", { type: "button", class: "link case-id", text: id, on: { click: () => guarded(() => openCase(id)) } });
}

// ---------- similar cases ----------

let lastQueryText = "";

async function runSearch() {
  const byCase = $("search-by-case").checked;
  const filters = {
    district: $("search-district").value.trim() || undefined,
    labels: Array.from(document.querySelectorAll("#search-labels input:checked")).map((c) => c.value),
    min_level: $("search-min-level").value || undefined,
    received_from: dateField("search-from"),
    received_to: dateField("search-to"),
    reporter: $("search-reporter").value.trim() || undefined,
  };
  if (!filters.labels.length) delete filters.labels;
  const body = { filters, top_k: Number($("search-top-k").value) || 10 };
  if (byCase) {
    const id = $("search-case-id").value.trim();
    body.case_id = id;
    const c = await api("GET", "/v1/cases/" + encodeURIComponent(id));
    lastQueryText = c.text || "";
  } else {
    body.text = $("search-text").value;
    lastQueryText = body.text;
  }
  $("search-submit").disabled = true;
  try {
    const r = await api("POST", "/v1/cases/search", body);
    renderHits(r);
  } finally {
    $("search-submit").disabled = false;
  }
}

function renderHits(r) {
  const out = clear($("search-results"));
  out.append(el("p", { class: "muted" }, "查询判为 ", levelBadge(r.query.level), " 标签：", chips(r.query.labels), " 共 " + r.hits.length + " 条结果"));
  for (const h of r.hits) {
    const c = h.case;
    // The service's shared words (with their weight in the match) when it gives them; else a
    // character-bigram match against the query, for cases stored before words were kept.
    const given = (h.shared.terms || []).map((t) => t.term);
    const spans = c.text ? (given.length ? termSpans(given, c.text) : sharedSpans(lastQueryText, c.text)) : [];
    const terms = given.length ? h.shared.terms.map((t) => t.term + " " + num(t.weight))
      : [...new Set(spans.map((s) => s.term))].sort((a, b) => b.length - a.length).slice(0, 12);
    out.append(
      el("div", { class: "hit" },
        el("div", { class: "head" },
          caseLink(c.case_id),
          el("span", { class: "score", text: "相似度 " + num(h.score) }),
          levelBadge(c.level),
          el("span", { class: "district", text: c.district || "" }),
          el("span", { class: "muted", text: c.received_at ? "登记 " + c.received_at.slice(0, 10) : "" })),
        el("div", {}, "共同标签：", h.shared.labels.length ? chips(h.shared.labels, h.shared.labels) : "无",
          h.shared.level ? " · 等级相同" : "", h.shared.district ? " · 同一区县" : ""),
        el("div", {}, "共同词语：", terms.length ? el("span", {}, ...terms.map((t) => el("span", { class: "chip shared", text: t }))) : "无"),
        c.text ? el("div", { class: "text" }, highlighted(c.text, spans)) : el("p", { class: "muted", text: "（服务未保存原文）" })));
  }
}

let openId = null;

async function openCase(id) {
  const c = await api("GET", "/v1/cases/" + encodeURIComponent(id));
  openId = c.case_id;
  show("search");
  $("case-view").hidden = false;
  $("case-id").textContent = c.case_id;
  const dl = clear($("case-fields"));
  const row = (k, v) => dl.append(el("dt", { text: k }), el("dd", {}, v));
  row("等级", levelBadge(c.level));
  row("风险等级", levelBadge(c.risk_level));
  if (c.base_level) row("文本等级", levelBadge(c.base_level));
  row("标签", chips(c.labels));
  row("提级规则", c.escalations.join("、") || "无");
  row("区县", c.district || "—");
  row("登记时间", c.received_at || "—");
  row("模型版本", c.model_version || "人工标注");
  row("入库时间", c.indexed_at);
  clear($("case-text")).append(c.text || "（服务未保存原文）");
  $("case-delete").hidden = !may("index");
  $("case-delete-confirm").hidden = true;
  $("case-view").scrollIntoView();
}

async function deleteCase() {
  await api("DELETE", "/v1/cases/" + encodeURIComponent(openId));
  $("case-view").hidden = true;
  for (const b of document.querySelectorAll(".case-id")) if (b.textContent === openId) b.closest(".hit")?.remove();
  showError("");
  $("search-results").prepend(el("p", { class: "notice", text: "已删除案件 " + openId }));
}

// ---------- evaluation ----------

let polling = null;

async function upload() {
  const file = $("eval-file").files[0];
  if (!file) return;
  const body = await file.text();
  const job = await api("POST", "/v1/evals?name=" + encodeURIComponent(file.name), body, "application/x-ndjson");
  follow(job.id);
}

function follow(id) {
  if (polling) clearTimeout(polling);
  $("eval-report").hidden = true;
  $("eval-progress").hidden = false;
  const tick = async () => {
    let job;
    try {
      job = await api("GET", "/v1/evals/" + encodeURIComponent(id));
    } catch (e) {
      showError(explain(e));
      return;
    }
    $("eval-bar").max = Math.max(job.total, 1);
    $("eval-bar").value = job.done;
    const status = {
      queued: "排队中，前面还有 " + (job.position ?? 0) + " 个任务",
      running: "评估中 " + job.done + " / " + job.total,
      done: "评估完成，共 " + job.total + " 条",
      failed: "评估失败：" + (job.error || ""),
    }[job.status];
    $("eval-status").textContent = status || job.status;
    $("eval-status").dataset.status = job.status;
    if (job.status === "done") {
      renderReport(job);
      guarded(loadHistory);
    } else if (job.status !== "failed") polling = setTimeout(tick, 500);
  };
  tick();
}

function interval(v, iv) {
  return pct(v) + (iv ? "（95% 区间 " + pct(iv.low) + "–" + pct(iv.high) + "）" : "");
}

function renderReport(job) {
  const m = job.report;
  $("eval-report").hidden = false;
  $("eval-title").textContent = "数据集 " + m.data + " · 模型 " + m.model_version + " · 共 " + m.n + " 条 · 用时 " + m.seconds.toFixed(1) + " 秒";
  const blob = new Blob([JSON.stringify(m, null, 2)], { type: "application/json" });
  const a = $("eval-download");
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(blob);
  a.download = "triage-eval-" + job.id + ".json";

  const iv = m.intervals;
  const head = clear($("eval-headline"));
  for (const [k, v] of [
    ["宏平均 F1", interval(m.macro_f1, iv.macro_f1)],
    ["漏判率（标注橙/红，判为黄/蓝）", interval(m.under_triage, iv.under_triage)],
    ["红色召回率", interval(m.red_recall, iv.red_recall)],
    ["误报率（标注黄/蓝，判为橙/红）", interval(m.false_alarm, iv.false_alarm)],
    ["等级准确率", pct(m.level_accuracy)],
    ["等级加权 Kappa", num(m.level_qwk)],
  ]) head.append(el("tr", {}, el("th", { text: k }), el("td", { class: "num", text: v })));

  const t = clear($("eval-labels"));
  t.append(el("tr", {}, ...["标签", "精确率", "召回率", "F1", "样本数"].map((h, i) => el("th", { class: i ? "num" : "", text: h }))));
  for (const [l, p] of Object.entries(m.labels)) {
    t.append(el("tr", {}, el("td", { text: labelZh(l) }), ...[p.precision, p.recall, p.f1].map((x) => el("td", { class: "num", text: num(x) })), el("td", { class: "num", text: p.support })));
  }

  const conf = clear($("eval-confusion"));
  conf.append(el("tr", {}, el("th", { text: "标注＼模型" }), ...LEVEL_ORDER.map((l) => el("th", { text: LEVELS[l] }))));
  const max = Math.max(1, ...m.level_confusion.flat());
  m.level_confusion.forEach((row, i) => {
    conf.append(el("tr", {}, el("th", { text: LEVELS[LEVEL_ORDER[i]] }), ...row.map((n, j) => {
      const td = el("td", { class: i === j ? "diag" : "", text: n });
      // CSSOM, not a style attribute: allowed under style-src 'self'.
      td.style.backgroundColor = "rgba(31, 58, 95, " + (0.08 + 0.8 * (n / max)).toFixed(3) + ")";
      td.style.color = n / max > 0.5 ? "#fff" : "#1f2933";
      return td;
    })));
  });

  clear($("eval-sweep")).append(sweepChart(m.threshold_sweep));

  const misses = clear($("eval-misses"));
  if (!m.worst_misses.length) misses.append(el("p", { class: "muted", text: "没有漏判。" }));
  for (const x of m.worst_misses.slice(0, 20)) {
    misses.append(el("div", { class: "miss" },
      el("div", {}, el("code", { text: x.id }), " ", x.source, " 标注 ", levelBadge(x.gold_level), " 模型 ", levelBadge(x.level)),
      el("div", {}, "标注标签：", chips(x.gold_labels), " 模型标签：", chips(x.predicted_labels)),
      el("div", { class: "text" }, highlighted(x.text, evidenceSpans(x.evidence || [])))));
  }
}

function sweepChart(sweep) {
  const W = 560, H = 260, L = 40, B = 30, T = 10, R = 130;
  const x = (t) => L + t * (W - L - R);
  const y = (v) => T + (1 - v) * (H - T - B);
  const s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "阈值扫描" });
  for (let k = 0; k <= 10; k += 2) {
    const v = k / 10;
    s.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e1e7ee" }));
    s.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(1)));
    s.append(svg("text", { x: x(v), y: H - B + 16, "text-anchor": "middle" }, v.toFixed(1)));
  }
  s.append(svg("text", { x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle" }, "阈值"));
  Object.entries(sweep).forEach(([label, points], i) => {
    const d = points.map((p, k) => (k ? "L" : "M") + x(p.threshold).toFixed(1) + " " + y(p.f1).toFixed(1)).join(" ");
    s.append(svg("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 2, class: "sweep-line" }));
    s.append(svg("line", { x1: W - R + 10, x2: W - R + 28, y1: T + 12 + i * 18, y2: T + 12 + i * 18, stroke: COLORS[i % COLORS.length], "stroke-width": 3 }));
    s.append(svg("text", { x: W - R + 32, y: T + 16 + i * 18 }, labelZh(label)));
  });
  return s;
}

async function loadHistory() {
  const { evals } = await api("GET", "/v1/evals");
  const box = clear($("eval-history"));
  if (!evals.length) {
    box.append(el("p", { class: "muted", text: "还没有评估记录。" }));
    return;
  }
  const byModel = new Map();
  for (const e of evals) {
    if (!byModel.has(e.model_version)) byModel.set(e.model_version, []);
    byModel.get(e.model_version).push(e);
  }
  const STATUS = { queued: "排队中", running: "评估中", done: "完成", failed: "失败" };
  for (const [model, runs] of byModel) {
    box.append(el("div", { class: "history-model", text: "模型 " + model }));
    const t = el("table", { class: "history" }, el("tr", {}, ...["数据集", "提交时间", "状态", "条数", "宏平均 F1", "红色召回率", "漏判率", ""].map((h) => el("th", { text: h }))));
    for (const e of runs) {
      t.append(el("tr", {},
        el("td", { text: e.name }),
        el("td", { text: e.created_at.slice(0, 19).replace("T", " ") }),
        el("td", { text: STATUS[e.status] || e.status }),
        el("td", { class: "num", text: e.total }),
        el("td", { class: "num", text: e.macro_f1 == null ? "" : num(e.macro_f1) }),
        el("td", { class: "num", text: e.red_recall == null ? "" : pct(e.red_recall) }),
        el("td", { class: "num", text: e.under_triage == null ? "" : pct(e.under_triage) }),
        el("td", {}, e.status === "failed" ? "" : el("button", { type: "button", class: "link", text: "查看", on: { click: () => follow(e.id) } }))));
    }
    box.append(t);
  }
}

// ---------- wiring ----------

function init() {
  const labelsBox = $("search-labels");
  for (const [k, zh] of Object.entries(LABELS)) {
    labelsBox.append(el("label", { class: "check" }, el("input", { type: "checkbox", value: k, id: "search-label-" + k }), zh));
  }
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("signin-key").value.trim();
    $("signin-key").value = "";
    guarded(() => signIn(key));
  });
  $("signout").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.page));
  $("triage-form").addEventListener("submit", (ev) => { ev.preventDefault(); guarded(runTriage); });
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); guarded(runSearch); });
  for (const r of document.querySelectorAll("input[name=search-by]")) {
    r.addEventListener("change", () => {
      const byCase = $("search-by-case").checked;
      $("search-text").hidden = byCase;
      $("search-case-id").hidden = !byCase;
    });
  }
  $("case-close").addEventListener("click", () => { $("case-view").hidden = true; });
  $("case-delete").addEventListener("click", () => { $("case-delete-confirm").hidden = false; });
  $("case-delete-confirm").addEventListener("click", () => guarded(deleteCase));
  $("eval-form").addEventListener("submit", (ev) => { ev.preventDefault(); guarded(upload); });
  if (sessionStorage.getItem(KEY)) guarded(() => signIn(sessionStorage.getItem(KEY)));
  else show("signin");
}

document.addEventListener("DOMContentLoaded", init);
