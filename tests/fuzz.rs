//! Black-box fuzzing of the real server: generated requests over every route,
//! well-formed and not (made-up methods, undecodable paths, wrong or repeated
//! keys, content types, JSON of the wrong shape, mutated and truncated bodies,
//! blank and overlong texts, bad dates, labels, levels and case ids). Every
//! request must get an answer with a code: no 5xx but 503 `overloaded`, a
//! JSON error body on every error the service writes, and the server alive
//! at the end with nothing panicking in its log.
//!
//! A short run is part of the test suite. The long run:
//! `TRIAGE_FUZZ_REQUESTS=1000000 cargo test --release -p triage-server --test fuzz -- --nocapture`
//! (`TRIAGE_FUZZ_SEED` replays a run; the seed is printed).

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::{connect, read_response, Server, ANALYST, OPERATOR, PLATFORM};

const ROUTES: [(&str, &str, &str); 10] = [
    ("POST", "/v1/triage", PLATFORM),
    ("POST", "/v1/triage/batch", PLATFORM),
    ("POST", "/v1/cases", PLATFORM),
    ("POST", "/v1/cases/search", ANALYST),
    ("GET", "/v1/cases/{id}", ANALYST),
    ("DELETE", "/v1/cases/{id}", PLATFORM),
    ("GET", "/metrics", OPERATOR),
    ("GET", "/openapi.json", ANALYST),
    ("GET", "/healthz", ""),
    ("GET", "/readyz", ""),
];

const WORDS: [&str; 16] = [
    "拖欠工资",
    "汽油",
    "同归于尽",
    "明天上午",
    "镇政府",
    "跳楼",
    "物业",
    "补偿款",
    "。",
    "！",
    "\n",
    " ",
    "\u{200b}",
    "\u{0}",
    "🔥",
    "e\u{301}",
];

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn any_string(rng: &mut StdRng, max: usize) -> String {
    let n = rng.random_range(0..=max);
    (0..n)
        .map(|_| match rng.random_range(0..4) {
            0 => pick(rng, &WORDS).to_string(),
            1 => char::from_u32(rng.random_range(0x4e00..0x9fff)).unwrap_or('字').to_string(),
            2 => rng.random::<char>().to_string(),
            _ => (rng.random_range(b' '..=b'~') as char).to_string(),
        })
        .collect()
}

/// A text: mostly short (cheap to judge), else blank, invisible or over the limit.
fn text(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0 => json!(""),
        1 => json!(" \n\t"),
        2 => json!("\u{200b}\u{feff}\u{0}"),
        3 => json!("讨".repeat(5001)),
        4 => any_value(rng, 2),
        _ => json!(any_string(rng, 12)),
    }
}

fn case_id(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => String::new(),
        1 => "x".repeat(rng.random_range(190..260)),
        2 => "id\u{0}\u{7}".into(),
        _ => any_string(rng, 10),
    }
}

fn date(rng: &mut StdRng) -> Value {
    let y = rng.random_range(1900..2100);
    let (m, d, h) = (rng.random_range(0..14), rng.random_range(0..33), rng.random_range(0..26));
    json!(match rng.random_range(0..6) {
        0 => format!("{y}-{m:02}-{d:02}"),
        1 => format!("{y}/{m}/{d} {h}:05:00"),
        2 => format!("{y}-{m:02}-{d:02}T{h:02}:00:00+08:00"),
        3 => any_string(rng, 12),
        4 => "2026-11-20".into(),
        _ => format!("{}", rng.random::<i64>()),
    })
}

fn any_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e300),
        4 => json!(any_string(rng, 8)),
        5 => Value::Array((0..rng.random_range(0..4)).map(|_| any_value(rng, depth - 1)).collect()),
        _ => json!({ any_string(rng, 5): any_value(rng, depth - 1) }),
    }
}

fn context(rng: &mut StdRng) -> Value {
    let mut c = serde_json::Map::new();
    for k in ["reporter", "district", "received_at", "accepted_at", "met_at", "resolved_at", "closed_at", "as_of"] {
        if rng.random_bool(0.3) {
            let v = if k.ends_with("_at") || k == "as_of" { date(rng) } else { json!(any_string(rng, 8)) };
            c.insert(k.into(), v);
        }
    }
    if rng.random_bool(0.05) {
        c.insert("unknown".into(), any_value(rng, 1));
    }
    Value::Object(c)
}

fn triage_item(rng: &mut StdRng) -> Value {
    let mut v = json!({"text": text(rng)});
    if rng.random_bool(0.4) {
        v["case_id"] = json!(case_id(rng));
    }
    if rng.random_bool(0.3) {
        v["store"] = json!(rng.random::<bool>());
    }
    if rng.random_bool(0.4) {
        v["context"] = context(rng);
    }
    v
}

fn labels(rng: &mut StdRng) -> Value {
    let all = ["violence", "self_harm", "collective", "retaliation", "livelihood", "murder", ""];
    Value::Array((0..rng.random_range(0..4)).map(|_| json!(pick(rng, &all))).collect())
}

fn body_for(rng: &mut StdRng, path: &str) -> Value {
    let levels = ["blue", "yellow", "orange", "red", "purple"];
    let mut v = match path {
        "/v1/triage" => triage_item(rng),
        "/v1/triage/batch" => {
            let n = match rng.random_range(0..10) {
                0 => 0,
                1 => 65,
                _ => rng.random_range(1..4),
            };
            json!({"items": (0..n).map(|_| triage_item(rng)).collect::<Vec<_>>()})
        }
        "/v1/cases" => {
            let mut v = json!({"case_id": case_id(rng), "text": text(rng)});
            if rng.random_bool(0.3) {
                v["labels"] = labels(rng);
            }
            if rng.random_bool(0.3) {
                v["level"] = json!(pick(rng, &levels));
            }
            if rng.random_bool(0.3) {
                v["context"] = context(rng);
            }
            v
        }
        _ => {
            let mut v =
                if rng.random_bool(0.6) { json!({"text": text(rng)}) } else { json!({"case_id": case_id(rng)}) };
            if rng.random_bool(0.3) {
                v["top_k"] = json!(rng.random_range(-2..60));
            }
            if rng.random_bool(0.4) {
                v["filters"] = json!({"labels": labels(rng), "min_level": pick(rng, &levels), "received_from": date(rng), "reporter": any_string(rng, 6)});
            }
            v
        }
    };
    // A field of the wrong type, or one that does not exist.
    if rng.random_bool(0.1) {
        if let Some(o) = v.as_object_mut() {
            let k = pick(rng, &["text", "case_id", "items", "store", "context", "top_k", "extra"]).to_string();
            o.insert(k, any_value(rng, 2));
        }
    }
    v
}

fn mutate(rng: &mut StdRng, mut body: Vec<u8>) -> Vec<u8> {
    match rng.random_range(0..20) {
        0 => body.truncate(rng.random_range(0..=body.len())),
        1 if !body.is_empty() => {
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..body.len());
                body[i] = rng.random();
            }
        }
        2 => body = (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
        3 => body.clear(),
        4 => body = format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
        _ => {}
    }
    body
}

fn path_for(rng: &mut StdRng, template: &str) -> String {
    let id: String = match rng.random_range(0..6) {
        0 => "%ff%fe".into(),
        1 => "%00%2f..%2f".into(),
        2 => "x".repeat(rng.random_range(150..400)),
        3 => "%E6%B1%BD%E6%B2%B9".into(),
        _ => any_string(rng, 10).bytes().map(|b| format!("%{b:02x}")).collect(),
    };
    let mut p = template.replace("{id}", &id);
    match rng.random_range(0..20) {
        0 => p.push_str("/extra"),
        1 => p.push_str("?q=%ff&&=="),
        2 => p = format!("/v1/{}", any_string(rng, 6).bytes().map(|b| format!("%{b:02x}")).collect::<String>()),
        3 => p.push('/'),
        _ => {}
    }
    p
}

/// One request's bytes.
fn request(rng: &mut StdRng) -> Vec<u8> {
    let &(route_method, template, key) = pick(rng, &ROUTES);
    let method = match rng.random_range(0..20) {
        0 => pick(rng, &["PUT", "PATCH", "OPTIONS", "TRACE", "GET", "POST", "DELETE"]).to_string(),
        1 => format!("M{}", "X".repeat(rng.random_range(1..300))),
        _ => route_method.to_string(),
    };
    let path = path_for(rng, template);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    match rng.random_range(0..20) {
        0 => {}
        1 => head.push_str("Authorization: Bearer not-a-key\r\n"),
        2 => head.push_str(&format!("Authorization: Bearer {key}\r\nAuthorization: Bearer {key}\r\n")),
        3 => head.push_str(&format!("Authorization: {} {key}\r\n", pick(rng, &["BEARER", "bearer", "Basic", "Token"]))),
        4 => head.push_str(&format!("Authorization: Bearer {}\r\n", pick(rng, &[PLATFORM, ANALYST, OPERATOR]))),
        _ => head.push_str(&format!("Authorization: Bearer {key}\r\n")),
    }
    let mut body = Vec::new();
    if route_method == "POST" {
        let ct = match rng.random_range(0..20) {
            0 => None,
            1 => Some("text/plain"),
            2 => Some("application/json; charset=utf-8"),
            3 => Some("application/problem+json"),
            4 => Some("multipart/form-data; boundary=x"),
            _ => Some("application/json"),
        };
        if let Some(ct) = ct {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        let json = serde_json::to_vec(&body_for(rng, template)).unwrap();
        body = mutate(rng, json);
    }
    if !body.is_empty() || route_method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    let mut out = format!("{head}\r\n").into_bytes();
    out.extend_from_slice(&body);
    out
}

#[test]
fn fuzzed_requests_get_a_code_never_a_crash() {
    let n: usize = std::env::var("TRIAGE_FUZZ_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500);
    let seed: u64 = std::env::var("TRIAGE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    println!("fuzz: {n} requests, TRIAGE_FUZZ_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..n {
        let req = request(&mut rng);
        let shown = || String::from_utf8_lossy(&req[..req.len().min(400)]).to_string();
        let mut c = connect(&s);
        c.write_all(&req).unwrap_or_else(|e| panic!("seed {seed}, request {i}: write failed ({e}): {}", shown()));
        let (st, head, body) = read_response(&mut c, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("seed {seed}, request {i}: no answer to {}", shown()));
        *statuses.entry(st).or_default() += 1;
        if body.is_empty() {
            // Only hyper's own protocol-error answers (and 200s of HEAD-like routes) come without a body.
            assert!([400, 414, 431].contains(&st), "seed {seed}, request {i}: {st} with no body for {}", shown());
            continue;
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            assert!(
                head.contains("text/plain") && st == 200,
                "seed {seed}, request {i}: {st} not JSON for {}",
                shown()
            );
            Value::Null
        });
        if st >= 400 {
            let code = v["error"]["code"].as_str();
            assert!(code.is_some(), "seed {seed}, request {i}: {st} without an error code: {v} for {}", shown());
            assert!(
                st < 500 || (st == 503 && code == Some("overloaded")),
                "seed {seed}, request {i}: {st} {v} for {}",
                shown()
            );
        }
    }
    let (st, _, _) = s.call("GET", "/healthz", None, None);
    assert_eq!(st, 200, "the server is still up");
    let log = s.log.lock().unwrap().clone();
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    println!("fuzz: {n} requests in {:.0?}, statuses {statuses:?}", started.elapsed());
}
