//! Black-box tests of the evaluation API: the real `triage serve` judges an
//! uploaded labelled set in the background, and its report equals what
//! `triage eval --json` writes for the same file.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{code, Server, ANALYST, OPERATOR, PLATFORM};

/// The first `n` lines of the shared dev set.
fn slice(dir: &Path, n: usize) -> (PathBuf, Vec<u8>) {
    let data = std::env::var_os("TRIAGE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let all = std::fs::read_to_string(data.join("dev.jsonl")).expect("the labelled dev set (TRIAGE_DATA)");
    let text: String = all.lines().take(n).map(|l| format!("{l}\n")).collect();
    let path = dir.join(format!("dev-{n}.jsonl"));
    std::fs::write(&path, &text).unwrap();
    (path, text.into_bytes())
}

fn upload(s: &Server, key: &str, name: &str, body: &[u8]) -> (u16, Value) {
    let r = ureq::post(&s.url(&format!("/v1/evals?name={name}")))
        .set("Authorization", &format!("Bearer {key}"))
        .set("Content-Type", "application/x-ndjson")
        .send_bytes(body);
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (resp.status(), resp.into_json().unwrap())
}

fn job(s: &Server, id: &str) -> Value {
    let (st, v, _) = s.call("GET", &format!("/v1/evals/{id}"), Some(OPERATOR), None);
    assert_eq!(st, 200, "{v}");
    v
}

/// Polls until the job is done or failed, and returns it.
fn finish(s: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let v = job(s, id);
        match v["status"].as_str().unwrap() {
            "done" | "failed" => return v,
            _ => assert!(Instant::now() < deadline, "job {id} did not finish: {v}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The report without what differs between two runs on the same set by design.
fn figures(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("seconds");
    o.remove("data");
    v
}

#[test]
fn a_job_equals_the_cli_and_its_report_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (path, body) = slice(dir.path(), 30);
    let cli_json = dir.path().join("cli.json");
    let out = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["eval", "--data"])
        .arg(&path)
        .arg("--json")
        .arg(&cli_json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_str(&std::fs::read_to_string(&cli_json).unwrap()).unwrap();

    let data = tempfile::tempdir().unwrap();
    let s = Server::start(data.path(), &[]);
    let (st, v) = upload(&s, OPERATOR, "dev-30.jsonl", &body);
    assert_eq!(st, 202, "{v}");
    assert_eq!((v["total"].as_u64(), v["name"].as_str()), (Some(30), Some("dev-30.jsonl")), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // Live triage while the job runs is answered, never refused.
    for _ in 0..5 {
        let (st, v) = s.post("/v1/triage", PLATFORM, json!({"text": "咨询一下医保报销比例。"}));
        assert_eq!(st, 200, "{v}");
    }
    let done = finish(&s, &id);
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["done"], 30);
    let report = done["report"].clone();
    assert_eq!(report["data"], "dev-30.jsonl");
    assert_eq!(figures(report.clone()), figures(cli.clone()), "the job's figures differ from `triage eval`'s");
    assert_eq!(done["macro_f1"], cli["macro_f1"]);

    // The report is kept in the data directory: after a restart it is listed and served.
    let s = s.restart();
    let (st, list, _) = s.call("GET", "/v1/evals", Some(OPERATOR), None);
    assert_eq!(st, 200, "{list}");
    let listed = &list["evals"][0];
    assert_eq!((listed["id"].as_str(), listed["status"].as_str()), (Some(id.as_str()), Some("done")), "{list}");
    assert_eq!(listed["model_version"], cli["model_version"]);
    assert_eq!(job(&s, &id)["report"], report);
}

#[test]
fn a_second_job_waits_and_a_fifth_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, big) = slice(dir.path(), 40);
    let (_, small) = slice(dir.path(), 2);
    let s = Server::start(dir.path(), &[]);
    let (st, first) = upload(&s, OPERATOR, "first", &big);
    assert_eq!(st, 202, "{first}");
    let (st, second) = upload(&s, OPERATOR, "second", &small);
    assert_eq!(st, 202, "{second}");
    assert_eq!((second["status"].as_str(), second["position"].as_u64()), (Some("queued"), Some(1)), "{second}");
    for n in ["third", "fourth"] {
        let (st, v) = upload(&s, OPERATOR, n, &small);
        assert_eq!(st, 202, "{v}");
    }
    let r = ureq::post(&s.url("/v1/evals")).set("Authorization", &format!("Bearer {OPERATOR}")).send_bytes(&small);
    let Err(ureq::Error::Status(429, resp)) = r else { panic!("a fifth job was not refused: {r:?}") };
    assert!(resp.header("Retry-After").is_some());
    let v: Value = resp.into_json().unwrap();
    assert_eq!(code(&v), "too_many_evals");

    // One job at a time: the second starts only after the first is done.
    let (a, b) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (x, y) = (job(&s, a), job(&s, b));
        let (xs, ys) = (x["status"].as_str().unwrap(), y["status"].as_str().unwrap());
        if ys != "queued" {
            assert_eq!(xs, "done", "the second job left the queue before the first finished: {x} {y}");
        }
        if ys == "done" {
            break;
        }
        if xs == "running" {
            assert!(x["done"].as_u64().unwrap() <= 40);
        }
        assert!(Instant::now() < deadline, "{x} {y}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, list, _) = s.call("GET", "/v1/evals", Some(OPERATOR), None);
    let names: Vec<&str> = list["evals"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fourth", "third", "second", "first"], "newest first");
    let version = list["evals"][0]["model_version"].as_str().unwrap().to_string();
    // Versions hold a `+`, which a query string must escape.
    let query = format!("/v1/evals?model_version={}", version.replace('+', "%2B"));
    let (_, only, _) = s.call("GET", &query, Some(OPERATOR), None);
    assert_eq!(only["evals"].as_array().unwrap().len(), 4, "{only}");
    let (_, none, _) = s.call("GET", "/v1/evals?model_version=risk-0.0", Some(OPERATOR), None);
    assert_eq!(none["evals"].as_array().unwrap().len(), 0, "{none}");

    // A job cut short by a restart is failed, not lost and not left running.
    let (st, cut) = upload(&s, OPERATOR, "cut", &big);
    assert_eq!(st, 202, "{cut}");
    let s = s.restart();
    let v = job(&s, cut["id"].as_str().unwrap());
    assert_eq!(v["status"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("stopped"), "{v}");
    assert_eq!(job(&s, a)["status"], "done", "finished jobs stay done");
}

#[test]
fn a_malformed_line_is_numbered_and_roles_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (_, body) = slice(dir.path(), 2);
    let s = Server::start(dir.path(), &[]);
    let mut bad = body.clone();
    bad.extend_from_slice(
        b"\n{\"id\":\"x\",\"text\":\"\xe7\xbc\xba\xe5\xb0\x91\xe7\xad\x89\xe7\xba\xa7\",\"labels\":[]}\n",
    );
    let (st, v) = upload(&s, OPERATOR, "bad", &bad);
    assert_eq!((st, code(&v)), (400, "invalid_line"), "{v}");
    // Two set lines, a blank line, then the bad one: the fourth line of the file.
    assert!(v["error"]["message"].as_str().unwrap().starts_with("line 4:"), "{v}");
    let (st, v) = upload(&s, OPERATOR, "bad", b"{\"text\":\"x\",\"labels\":[\"riot\"],\"level\":\"red\"}\n");
    assert_eq!((st, code(&v)), (400, "invalid_line"), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("line 1:"), "{v}");
    let (st, v) = upload(&s, OPERATOR, "bad", b"{\"text\": \"abc");
    assert_eq!((st, code(&v)), (400, "invalid_line"), "{v}");
    let (st, v) = upload(&s, OPERATOR, "empty", b"\n\n");
    assert_eq!((st, code(&v)), (400, "invalid_request"), "{v}");
    let (st, v, _) = s.call("GET", "/v1/evals/ev-none", Some(OPERATOR), None);
    assert_eq!((st, code(&v)), (404, "unknown_eval"));

    for key in [ANALYST, PLATFORM] {
        let (st, v) = upload(&s, key, "x", &body);
        assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
        let (st, v, _) = s.call("GET", "/v1/evals", Some(key), None);
        assert_eq!((st, code(&v)), (403, "forbidden"), "{v}");
    }
    let (st, v, _) = s.call("GET", "/v1/evals", None, None);
    assert_eq!((st, code(&v)), (401, "unauthorized"));
    let (st, v, _) = s.call("GET", "/v1/evals", Some(OPERATOR), None);
    assert_eq!((st, v["evals"].as_array().map(Vec::len)), (200, Some(0)), "nothing was queued: {v}");

    // The routes are in the API description, and whoami says what each role may do.
    let (_, doc, _) = s.call("GET", "/openapi.json", Some(ANALYST), None);
    for p in ["/v1/evals", "/v1/evals/{id}", "/v1/whoami"] {
        assert!(doc["paths"][p].is_object(), "{p} missing from /openapi.json");
    }
    let (st, me, _) = s.call("GET", "/v1/whoami", Some(OPERATOR), None);
    assert_eq!(st, 200, "{me}");
    assert_eq!((me["role"].as_str(), me["permissions"].clone()), (Some("operator"), json!(["metrics", "evaluate"])));
    let (_, me, _) = s.call("GET", "/v1/whoami", Some(ANALYST), None);
    assert_eq!(me["permissions"], json!(["search", "read"]));
    let (st, v, _) = s.call("GET", "/v1/whoami", Some("not-a-key"), None);
    assert_eq!((st, code(&v)), (401, "unauthorized"));
}
