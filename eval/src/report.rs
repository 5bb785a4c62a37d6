//! The operator report: one self-contained HTML file (inline CSS and SVG, no
//! scripts, no network), readable in any browser and printable.

use std::fmt::Write;

use crate::metrics::Metrics;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const LEVELS: [&str; 4] = ["blue", "yellow", "orange", "red"];
const COLORS: [&str; 5] = ["#c0392b", "#8e44ad", "#2c3e50", "#d35400", "#27ae60"];

/// The report's JSON: the metrics with the model version, the set's name and
/// the time taken. `triage eval --json` writes it; `GET /v1/evals/{id}` answers with it.
pub fn json(m: &Metrics, model_version: &str, data: &str, seconds: f64) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(m)?;
    v["model_version"] = model_version.into();
    v["data"] = data.into();
    v["seconds"] = seconds.into();
    Ok(v)
}

pub fn html(m: &Metrics, title: &str, model_version: &str) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        r#"<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{t}</title><style>
body{{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:1100px}}
h1{{font-size:1.5em}} h2{{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
th{{background:#f4f4f4}} td.l,th.l{{text-align:left}} .k{{display:inline-block;margin:0 1.5em .8em 0}}
.k b{{display:block;font-size:1.5em}} .bad{{color:#c0392b}} .txt{{text-align:left;max-width:640px;font-size:.9em}}
</style></head><body><h1>{t}</h1><p>model <code>{v}</code> · {n} examples</p>"#,
        t = esc(title),
        v = esc(model_version),
        n = m.n
    );
    // Headline figures.
    h.push_str("<div>");
    for (name, value, pct) in [
        ("macro-F1", m.macro_f1, false),
        ("level accuracy", m.level_accuracy, true),
        ("level QWK", m.level_qwk, false),
        ("under-triage", m.under_triage, true),
        ("red recall", m.red_recall, true),
        ("false alarm", m.false_alarm, true),
    ] {
        let shown = if pct { format!("{:.1}%", value * 100.0) } else { format!("{value:.3}") };
        let _ = write!(h, r#"<span class="k">{name}<b>{shown}</b></span>"#);
    }
    h.push_str("</div>");

    // Per-label table.
    h.push_str("<h2>Labels</h2><table><tr><th class=l>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
    for (label, p) in &m.labels {
        let _ = write!(
            h,
            "<tr><td class=l>{label}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
            p.precision, p.recall, p.f1, p.support
        );
    }
    h.push_str("</table>");

    // Confusion heat map.
    h.push_str("<h2>Level confusion (rows: gold, columns: predicted)</h2>");
    let max = m.level_confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    let cell = 70;
    let _ = write!(h, r#"<svg width="{}" height="{}" role="img" font-size="13">"#, cell * 5 + 10, cell * 5 + 10);
    for (i, name) in LEVELS.iter().enumerate() {
        let _ = write!(
            h,
            r#"<text x="{}" y="{}" text-anchor="middle">{name}</text>"#,
            cell * (i + 1) + cell / 2,
            cell / 2 + 5
        );
        let _ = write!(
            h,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text>"#,
            cell - 8,
            cell * (i + 1) + cell / 2 + 5
        );
    }
    for (i, row) in m.level_confusion.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let a = v as f64 / max;
            let fill = if i == j { format!("rgba(39,174,96,{a:.2})") } else { format!("rgba(192,57,43,{a:.2})") };
            let (x, y) = (cell * (j + 1), cell * (i + 1));
            let _ = write!(
                h,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#999"/><text x="{}" y="{}" text-anchor="middle">{v}</text>"##,
                x + cell / 2,
                y + cell / 2 + 5
            );
        }
    }
    h.push_str("</svg>");

    // Precision/recall curves from the threshold sweep.
    h.push_str("<h2>Precision and recall by threshold</h2>");
    let (w, ht, pad) = (300.0, 200.0, 30.0);
    for (k, (label, sweep)) in m.threshold_sweep.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let _ = write!(
            h,
            r#"<svg width="{}" height="{}" font-size="11" role="img"><text x="{pad}" y="14">{label}</text>"#,
            w + pad * 2.0,
            ht + pad * 2.0
        );
        let _ = write!(
            h,
            r##"<rect x="{pad}" y="{pad}" width="{w}" height="{ht}" fill="none" stroke="#ccc"/><text x="{pad}" y="{}">0</text><text x="{}" y="{}">1 (threshold)</text>"##,
            ht + pad + 14.0,
            w + pad - 50.0,
            ht + pad + 14.0
        );
        for (field, dash) in [("precision", ""), ("recall", "4 3")] {
            let pts: Vec<String> = sweep
                .iter()
                .map(|p| {
                    let v = if field == "precision" { p.precision } else { p.recall };
                    format!("{:.1},{:.1}", pad + p.threshold * w, pad + (1.0 - v) * ht)
                })
                .collect();
            let _ = write!(
                h,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}" points="{}"/>"#,
                pts.join(" ")
            );
        }
        let _ = write!(
            h,
            r#"<text x="{}" y="{}" fill="{color}">— precision  - - recall</text></svg>"#,
            pad + 5.0,
            pad + 14.0
        );
    }

    // Intervals, then the breakdowns the set allows.
    let iv = &m.intervals;
    let _ = write!(
        h,
        "<h2>Bootstrap 95 % intervals ({} resamples)</h2><table><tr><th class=l>figure</th><th>value</th><th>interval</th></tr>",
        iv.resamples
    );
    for (name, v, i) in [
        ("macro-F1", m.macro_f1, iv.macro_f1),
        ("red recall", m.red_recall, iv.red_recall),
        ("under-triage", m.under_triage, iv.under_triage),
        ("false alarm", m.false_alarm, iv.false_alarm),
    ] {
        let _ = write!(h, "<tr><td class=l>{name}</td><td>{v:.3}</td><td>{:.3} – {:.3}</td></tr>", i.low, i.high);
    }
    h.push_str("</table>");
    for (title, groups) in [("source", &m.by_source), ("persona", &m.by_persona), ("form", &m.by_form)] {
        if groups.is_empty() {
            continue;
        }
        let _ = write!(
            h,
            "<h2>By {title}</h2><table><tr><th class=l>{title}</th><th>n</th><th>macro-F1</th><th>level accuracy</th><th>under-triage</th><th>false alarm</th></tr>"
        );
        for (k, g) in groups {
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                esc(k),
                g.n,
                g.macro_f1,
                g.level_accuracy,
                g.under_triage,
                g.false_alarm
            );
        }
        h.push_str("</table>");
    }

    // Worst misses.
    let _ = write!(h, "<h2>Worst misses: gold red/orange predicted yellow/blue ({})</h2>", m.worst_misses.len());
    if m.worst_misses.is_empty() {
        h.push_str("<p>None.</p>");
    } else {
        h.push_str("<table><tr><th class=l>id</th><th class=l>source</th><th>gold</th><th>predicted</th><th class=l>gold labels</th><th class=l>predicted labels</th><th class=l>text</th></tr>");
        for x in m.worst_misses.iter().take(50) {
            let labels = |v: &[triage_risk::Label]| v.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ");
            let _ = write!(
                h,
                "<tr><td class=l>{}</td><td class=l>{}</td><td class=bad>{}</td><td>{}</td><td class=l>{}</td><td class=l>{}</td><td class=txt>{}</td></tr>",
                esc(&x.id),
                esc(&x.source),
                x.gold_level,
                x.level,
                labels(&x.gold_labels),
                labels(&x.predicted_labels),
                esc(&x.text)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}
