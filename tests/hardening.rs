//! Black-box tests of what a hostile or careless client can do: the real
//! `triage` binary on loopback, driven through raw sockets where an HTTP
//! client library would not send what a hostile one does.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{code, connect, read_response, read_until_closed, Server, PLATFORM};

fn json_code(body: &[u8]) -> String {
    let v: Value =
        serde_json::from_slice(body).unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(body)));
    code(&v).to_string()
}

#[test]
fn slow_silent_and_idle_connections_are_cut_off_and_connections_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            "--header-timeout",
            "1",
            "--body-timeout",
            "1",
            "--request-timeout",
            "1",
            "--max-connections",
            "3",
            // Room for a batch that takes far longer than the request timeout on any CPU.
            "--max-request-tokens",
            "100000",
        ],
    );
    let limit = Duration::from_secs(4);

    // Connect and send nothing.
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut connect(&s), limit);
    assert!(closed, "a silent connection was kept past {limit:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed before the header timeout");

    // Headers one line at a time, each line well inside the timeout: the head as a whole is late.
    let mut c = connect(&s);
    let mut w = c.try_clone().unwrap();
    let started = Instant::now();
    let dribble = std::thread::spawn(move || {
        let _ = w.write_all(b"POST /v1/triage HTTP/1.1\r\nHost: x\r\n");
        for i in 0..30 {
            std::thread::sleep(Duration::from_millis(300));
            if w.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).is_err() {
                break;
            }
        }
    });
    let (_, closed) = read_until_closed(&mut c, limit);
    assert!(closed && started.elapsed() < limit, "a head sent a line at a time was not cut off");
    drop(c);
    dribble.join().unwrap();

    // A body shorter than its Content-Length, and a body sent a byte at a time.
    let head = format!(
        "POST /v1/triage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PLATFORM}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    let mut c = connect(&s);
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(b"{\"text\": \"").unwrap();
    let (st, _, body) = read_response(&mut c, limit).expect("no answer to a short body");
    assert_eq!((st, json_code(&body).as_str()), (408, "request_timeout"));
    let mut c = connect(&s);
    let mut w = c.try_clone().unwrap();
    w.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let dribble = std::thread::spawn(move || {
        for _ in 0..30 {
            if w.write_all(b" ").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let (st, _, body) = read_response(&mut c, limit).expect("no answer to a body sent a byte at a time");
    assert_eq!((st, json_code(&body).as_str()), (408, "request_timeout"));
    assert!(started.elapsed() < limit);
    drop(c);
    dribble.join().unwrap();

    // An idle kept-alive connection is closed after its request was answered.
    let mut c = connect(&s);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (st, _, _) = read_response(&mut c, limit).expect("no answer to /healthz");
    assert_eq!(st, 200);
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut c, limit);
    assert!(closed && started.elapsed() < limit, "an idle kept-alive connection was kept");

    // At the connection limit, a new connection waits until one closes.
    let held: Vec<TcpStream> = (0..3).map(|_| connect(&s)).collect();
    let mut waiting = connect(&s);
    waiting.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert!(
        read_response(&mut waiting, Duration::from_millis(500)).is_none(),
        "a fourth connection was served past --max-connections 3"
    );
    drop(held);
    let (st, _, _) = read_response(&mut waiting, limit).expect("the waiting connection was never served");
    assert_eq!(st, 200);

    // The whole request: twelve texts of 5,000 characters take seconds of inference, past
    // --request-timeout 1, even on a CPU with AVX-512 VNNI, where three such texts took
    // under a second and the timeout never fired.
    let started = Instant::now();
    let items: Vec<Value> = (0..12).map(|i| json!({"text": format!("{i:02}{}", "讨".repeat(4990))})).collect();
    let (st, v, _) = s.call("POST", "/v1/triage/batch", Some(PLATFORM), Some(json!({"items": items})));
    assert_eq!((st, code(&v)), (408, "request_timeout"), "{v}");
    assert!(started.elapsed() < limit);
}

fn metrics(s: &Server) -> String {
    let (st, m, _) = s.call("GET", "/metrics", Some(support::OPERATOR), None);
    assert_eq!(st, 200);
    m.as_str().unwrap().to_string()
}

#[test]
fn metric_labels_take_a_bounded_set_of_values() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    s.call("GET", "/healthz", None, None);
    let before = metrics(&s).len();
    // Made-up methods and paths, no key: each would be a new series if labels were free text.
    for i in 0..200 {
        let method = format!("M{i}{}", "X".repeat(500));
        let mut c = connect(&s);
        c.write_all(
            format!("{method} /nowhere/{i}/{method} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let (st, _, body) = read_response(&mut c, Duration::from_secs(10)).expect("no answer");
        assert!(st == 404 || st == 405, "{st}");
        json_code(&body);
    }
    for i in 0..50 {
        s.call("GET", &format!("/v1/cases/made-up-{i}"), Some(support::ANALYST), None);
    }
    let m = metrics(&s);
    assert!(!m.contains("XXXX") && !m.contains("made-up-"), "a label holds the client's text:\n{m}");
    assert!(m.contains("method=\"other\"") && m.contains("route=\"unmatched\""), "{m}");
    assert!(m.contains("route=\"/v1/cases/{case_id}\""), "{m}");
    // A few new series (other/unmatched, the case route, statuses), not 250.
    assert!(m.len() < before + 8_000, "/metrics grew from {before} to {} bytes", m.len());
}

#[test]
fn every_answer_has_the_json_error_body_and_an_oversized_length_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let limit = Duration::from_secs(5);
    for (method, key) in [("GET", support::ANALYST), ("DELETE", PLATFORM)] {
        let mut c = connect(&s);
        c.write_all(
            format!("{method} /v1/cases/%ff%fe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let (st, head, body) = read_response(&mut c, limit).expect("no answer");
        assert_eq!((st, json_code(&body).as_str()), (400, "invalid_request"), "{method}");
        assert!(head.contains("content-type: application/json"), "{head}");
    }
    let mut c = connect(&s);
    c.write_all(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (st, _, body) = read_response(&mut c, limit).expect("no answer");
    assert_eq!((st, json_code(&body).as_str()), (404, "not_found"));

    // A Content-Length over the limit is answered before any of the body is sent,
    // with and without `Expect: 100-continue`.
    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut c = connect(&s);
        let started = Instant::now();
        c.write_all(
            format!("POST /v1/triage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PLATFORM}\r\nContent-Type: application/json\r\n{expect}Content-Length: 104857600\r\n\r\n{{\"text\": \"")
                .as_bytes(),
        )
        .unwrap();
        let (st, _, body) = read_response(&mut c, limit).expect("no early answer to an oversized Content-Length");
        assert_eq!((st, json_code(&body).as_str()), (413, "payload_too_large"), "{expect:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
    // A client that sends the whole oversized body before reading still gets the 413.
    let big = format!("{{\"text\": \"{}\"}}", "a".repeat(3 * 1024 * 1024));
    let (st, v) = s.raw("/v1/triage", PLATFORM, "application/json", big.as_bytes());
    assert_eq!((st, code(&v)), (413, "payload_too_large"));
    let (st, _) = s.post("/v1/triage", PLATFORM, json!({"text": "咨询一下医保报销比例。"}));
    assert_eq!(st, 200);
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = e.path();
        if p.is_dir() {
            found.extend(files_holding(&p, needle));
        } else if std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(p);
        }
    }
    found
}

#[cfg(unix)]
fn open_to_others(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let p = e.path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        if mode & 0o077 != 0 {
            open.push(format!("{} {:o}", p.display(), mode & 0o777));
        }
        if p.is_dir() {
            open.extend(open_to_others(&p));
        }
    }
    open
}

#[test]
fn store_text_false_needs_a_redacted_store_and_the_store_is_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Made open to others (the test's umask): the server makes it owner-only.
    std::fs::create_dir_all(&data).unwrap();
    let s = Server::start(&data, &[]);
    let (first, second) =
        ("强拆户王大锤第一次反映：房子被拆了补偿款没给。", "强拆户王大锤补充：村里说再闹就抓人，补偿款还是没给。");
    for text in [first, second] {
        let (st, v) = s.post(
            "/v1/cases",
            PLATFORM,
            json!({"case_id": "redact-me", "text": text, "level": "orange", "labels": ["livelihood"]}),
        );
        assert_eq!(st, 200, "{v}");
    }
    let data = s.stop();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
        let open = open_to_others(&data.join("cases"));
        assert!(open.is_empty(), "store files open to other users: {open:?}");
    }
    // Both texts, the overwritten one too, are in the store's files.
    assert!(!files_holding(&data, "王大锤第一次").is_empty(), "the overwritten text is not in the files to begin with");

    // Serving without texts from a store that holds them is refused at start.
    let keys = data.join("keys.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "--listen", "127.0.0.1:0", "--store-text", "false", "--data-dir"])
        .arg(&data)
        .arg("--keys")
        .arg(&keys)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve --store-text false started on a store that holds texts");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success() && err.contains("triage cases redact"), "{status}: {err}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["cases", "redact", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done, json!({"cases": 1, "texts_removed": 1}));
    let left = files_holding(&data, "王大锤");
    assert!(left.is_empty(), "text still in {left:?}");
    #[cfg(unix)]
    {
        let open = open_to_others(&data.join("cases"));
        assert!(open.is_empty(), "redacted store files open to other users: {open:?}");
    }

    // Now it starts; the case keeps everything but its text.
    let s = Server::spawn(data, vec!["--store-text".into(), "false".into()]);
    let (st, v, _) = s.call("GET", "/v1/cases/redact-me", Some(support::ANALYST), None);
    assert_eq!(st, 200, "{v}");
    assert!(v["text"].is_null(), "{v}");
    assert_eq!((v["level"].as_str(), v["labels"][0].as_str()), (Some("orange"), Some("livelihood")));
    let (st, v) = s.post("/v1/cases/search", support::ANALYST, json!({"text": second}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hits"][0]["case"]["case_id"], "redact-me", "the vector is kept: {v}");
}

/// A metric's value (the first series of that name).
fn metric(s: &Server, name: &str) -> f64 {
    metrics(s)
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0.0)
}

fn wait_for_depth(s: &Server, want: f64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let d = metric(s, "triage_queue_depth");
        if d == want {
            return;
        }
        assert!(Instant::now() < deadline, "queue depth {d}, waited for {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a batch on its own connection and leaves the answer unread.
fn send_batch(s: &Server, texts: &[String]) -> TcpStream {
    let body = json!({"items": texts.iter().map(|t| json!({"text": t})).collect::<Vec<_>>()}).to_string();
    let mut c = connect(s);
    c.write_all(
        format!(
            "POST /v1/triage/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {PLATFORM}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c
}

#[test]
fn one_batch_cannot_hold_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--queue-size", "64"]);

    // 64 texts of 5,000 characters would take minutes of inference: refused by their cost, at once.
    let huge: Vec<String> = (0..64).map(|i| format!("{i}{}", "讨".repeat(4990))).collect();
    let mut c = send_batch(&s, &huge);
    let (st, _, body) = read_response(&mut c, Duration::from_secs(15)).expect("no prompt answer to a costly batch");
    assert_eq!((st, json_code(&body).as_str()), (400, "batch_too_large"));

    // A batch fills the queue; the refusal's Retry-After is the time to drain it, not 1.
    let long = "我们村的土地被征用了，补偿款到现在还没发下来，村干部说钱被挪用了，大家都很着急。".repeat(5);
    let texts: Vec<String> = (0..64).map(|i| format!("{i}{long}")).collect();
    let full = send_batch(&s, &texts);
    wait_for_depth(&s, 64.0, Duration::from_secs(30));
    let (st, v, retry) = s.call("POST", "/v1/triage", Some(PLATFORM), Some(json!({"text": "咨询一下公积金提取。"})));
    assert_eq!((st, code(&v)), (503, "overloaded"));
    let retry: u64 = retry.and_then(|r| r.parse().ok()).expect("a Retry-After in seconds");
    assert!((2..=300).contains(&retry), "Retry-After {retry} for 64 queued texts");

    // Its client goes away: the texts not yet judged leave the queue.
    drop(full);
    wait_for_depth(&s, 0.0, Duration::from_secs(20));
    assert!(metric(&s, "triage_cancelled_texts_total") > 0.0);

    // While a big batch is being judged, a single text is answered first.
    let mut batch = send_batch(&s, &texts[..32]);
    wait_for_depth(&s, 32.0, Duration::from_secs(30));
    let (st, v) = s.post("/v1/triage", PLATFORM, json!({"text": "咨询一下公积金提取。"}));
    assert_eq!(st, 200, "{v}");
    assert!(
        read_response(&mut batch, Duration::from_millis(10)).is_none(),
        "the single text waited for the whole batch"
    );
    drop(batch);
    wait_for_depth(&s, 0.0, Duration::from_secs(20));
}

/// A client that shuts down its sending side once its request is out (some
/// scripts and proxies do) is answered, and its case stored, with
/// `--half-close true`. By default the end of its stream reads as a client
/// that has gone, so that the work of one that gave up is dropped.
#[test]
fn a_half_closed_request_is_answered_and_stored_with_half_close() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--half-close", "true"]);
    let body =
        json!({"case_id": "half-closed", "text": "小区门口的垃圾堆了一个月没人清运，请尽快处理。", "level": "blue"})
            .to_string();
    let req = format!(
        "POST /v1/cases HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {PLATFORM}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = connect(&s);
    c.write_all(req.as_bytes()).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let (st, _, answer) = read_response(&mut c, Duration::from_secs(60)).expect("an answer to a half-closed request");
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&answer));
    let (st, v, _) = s.call("GET", "/v1/cases/half-closed", Some(support::ANALYST), None);
    assert_eq!((st, v["level"].as_str()), (200, Some("blue")), "{v}");
}

/// On the real server (the in-process router tests check the same on a
/// stand-in judge): one `Authorization` header, its scheme in any case; and
/// texts made only of invisible characters are `empty_text`.
#[test]
fn one_authorization_header_with_any_case_of_bearer_and_invisible_texts_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let send = |auth: &[String]| {
        let mut c = connect(&s);
        let mut head = String::from("GET /openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for a in auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        c.write_all(format!("{head}\r\n").as_bytes()).unwrap();
        read_response(&mut c, Duration::from_secs(10)).expect("no answer")
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (st, _, _) = send(&[format!("{scheme} {PLATFORM}")]);
        assert_eq!(st, 200, "{scheme}");
    }
    // Two headers, whichever comes first, are refused: not the first one winning.
    for pair in
        [[format!("Bearer {PLATFORM}"), "Bearer wrong".into()], ["Bearer wrong".into(), format!("Bearer {PLATFORM}")]]
    {
        let (st, _, body) = send(&pair);
        assert_eq!((st, json_code(&body).as_str()), (400, "invalid_request"), "{pair:?}");
    }
    for text in ["\u{200b}\u{200d}\u{feff}", "\u{0}\u{0}\t", " \u{2060}\n"] {
        let (st, v) = s.post("/v1/triage", PLATFORM, json!({ "text": text }));
        assert_eq!((st, code(&v)), (400, "empty_text"), "{text:?}");
    }
}
