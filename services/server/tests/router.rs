//! In-process tests of the router: requests go through `tower::ServiceExt::oneshot`
//! (no socket), to a `Service` over a stand-in judge that answers at once and
//! an embedded store in a temporary directory. They cover what the routes do
//! around the model: routing, keys and roles, limits, error codes, the
//! queue's refusals and readiness. What needs the real model, a real
//! connection or a real process (model behaviour, timeouts on the wire,
//! kill -9, fuzzing) stays in the black-box tests in the repository's `tests/`.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;
use triage_cases::{CaseStore, EdgeStore};
use triage_risk::model::{Decision, Scores};
use triage_risk::{Judge, Judgement, Label, LabelScore, Policy, RiskLevel, TriageError};
use triage_server::http::{self, new_key, AppState, Evals, Keys, Limits, Role, Service, ServiceConfig};

/// The stand-in's vector size (the real encoder's is 384; the store takes any).
const DIM: usize = 64;
/// Texts holding this are judged only once the test opens the gate.
const HOLD: &str = "等一等";
/// A text holding this makes the judge panic, which ends the inference worker.
const CRASH: &str = "让评判崩溃";
/// Its words make a text red (violence).
const THREAT: [&str; 2] = ["汽油", "烧了"];

#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let (_open, timeout) = self.changed.wait_timeout_while(open, Duration::from_secs(10), |o| !*o).unwrap();
        assert!(!timeout.timed_out(), "the test never opened the gate");
    }

    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.changed.notify_all();
    }
}

/// Judges at once and the same way every time: red (violence) for a threat
/// word, blue otherwise; a bag-of-characters vector, so texts sharing
/// characters are near; one token per character.
struct FakeJudge {
    gate: Arc<Gate>,
    /// Texts judged so far.
    judged: Mutex<usize>,
}

impl FakeJudge {
    fn judgement(text: &str) -> Judgement {
        let red = THREAT.iter().any(|w| text.contains(w));
        let mut v = vec![0f32; DIM];
        for c in text.chars().filter(|c| !c.is_whitespace()) {
            v[c as usize % DIM] += 1.0;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.iter_mut().for_each(|x| *x /= norm);
        let flagged = Label::ALL.map(|l| red && l == Label::Violence);
        let scores = flagged.map(|f| if f { 0.9 } else { 0.1 });
        let level = if red { RiskLevel::Red } else { RiskLevel::Blue };
        Judgement {
            labels: Label::ALL
                .iter()
                .zip(flagged)
                .zip(scores)
                .map(|((&label, flagged), score)| LabelScore { label, score, threshold: 0.5, flagged })
                .collect(),
            level,
            reasons: vec!["stand-in judge".into()],
            evidence: Vec::new(),
            model_version: "fake-1".into(),
            embedding: v,
            decision: Decision {
                scores: Scores { labels: scores, level: if red { [0.9; 3] } else { [0.1; 3] } },
                thresholds: [0.5; 5],
                flagged,
                level,
                forced_label: None,
            },
        }
    }
}

impl Judge for FakeJudge {
    fn judge_batch(&self, texts: &[&str]) -> Result<Vec<Judgement>, TriageError> {
        if texts.iter().any(|t| t.contains(CRASH)) {
            panic!("the stand-in judge panics on purpose");
        }
        if texts.iter().any(|t| t.contains(HOLD)) {
            self.gate.wait();
        }
        *self.judged.lock().unwrap() += texts.len();
        Ok(texts.iter().map(|t| Self::judgement(t)).collect())
    }

    fn cost(&self, text: &str) -> usize {
        text.chars().count()
    }

    fn model_version(&self) -> &str {
        "fake-1"
    }
}

struct Keys3 {
    platform: String,
    analyst: String,
    operator: String,
}

struct App {
    router: Router,
    state: Arc<AppState>,
    judge: Arc<FakeJudge>,
    keys: Keys3,
    /// The store behind the service, for cases no route writes.
    store: Arc<EdgeStore>,
    _dir: TempDir,
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: 2 * 1024 * 1024,
        max_request_tokens: 16_384,
        body_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(120),
    }
}

fn app() -> App {
    app_with(limits(), 128)
}

fn app_with(limits: Limits, queue_size: usize) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EdgeStore::open(&dir.path().join("cases"), DIM).unwrap());
    let judge = Arc::new(FakeJudge { gate: Arc::default(), judged: Mutex::default() });
    let config = ServiceConfig {
        policy: Policy::builtin().unwrap(),
        policy_path: None,
        salt: b"router-test-salt".to_vec(),
        store_text: true,
        queue_size,
        batching: triage_queue::Batching::ONE,
    };
    let service = Service::start(judge.clone(), store.clone(), config);
    let evals = Evals::start(dir.path().join("evals"), &service).unwrap();
    let mut table = String::new();
    let mut key = |name: &str, role: Role| {
        let (k, t) = new_key(name, role).unwrap();
        table.push_str(&t);
        k
    };
    let keys = Keys3 {
        platform: key("platform", Role::Platform),
        analyst: key("analyst", Role::Analyst),
        operator: key("operator", Role::Operator),
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle();
    let state = Arc::new(AppState::new(service, Keys::parse(&table).unwrap(), limits, metrics, evals));
    App { router: http::router(state.clone()), state, judge, keys, store, _dir: dir }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.body))
    }

    /// Status and error code, the pair most tests check.
    fn error(&self) -> (u16, &str) {
        (self.status.as_u16(), self.code())
    }
}

impl App {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer { status: parts.status, headers: parts.headers, body }
    }

    /// `key` None sends no Authorization; a body is sent as JSON.
    async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Answer {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            b = b.header(header::AUTHORIZATION, format!("Bearer {k}"));
        }
        let req = match body {
            Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    async fn get(&self, path: &str, key: Option<&str>) -> Answer {
        self.call(Method::GET, path, key, None).await
    }

    async fn raw(&self, path: &str, key: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .unwrap();
        self.send(req).await
    }

    fn depth(&self) -> usize {
        self.state.service().queue().depth()
    }

    async fn until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "waited 10 s for {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn is_json(a: &Answer) -> bool {
    a.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"))
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_json_error_body() {
    let app = app();
    let a = app.get("/healthz", None).await;
    assert_eq!((a.status, &a.body), (StatusCode::OK, &json!({"status": "ok"})));
    for path in ["/nowhere", "/v1/nothing", "/v1/triage/extra"] {
        let a = app.get(path, Some(&app.keys.platform)).await;
        assert_eq!(a.error(), (404, "not_found"), "{path}");
        assert!(is_json(&a), "{path}: {:?}", a.headers);
    }
    let a = app.get("/v1/triage", Some(&app.keys.platform)).await;
    assert_eq!(a.error(), (405, "method_not_allowed"));
    assert!(is_json(&a));
    let a = app.call(Method::PUT, "/v1/cases/x", Some(&app.keys.platform), None).await;
    assert_eq!(a.error(), (405, "method_not_allowed"));
    // A method no route knows: the route matched, the method did not.
    let a = app.call(Method::from_bytes(b"BREW").unwrap(), "/v1/triage", None, None).await;
    assert_eq!(a.error(), (405, "method_not_allowed"));
    // A path that does not decode to UTF-8.
    for (m, key) in [(Method::GET, &app.keys.analyst), (Method::DELETE, &app.keys.platform)] {
        let a = app.call(m.clone(), "/v1/cases/%ff%fe", Some(key), None).await;
        assert_eq!(a.error(), (400, "invalid_request"), "{m}");
    }
}

#[tokio::test]
async fn a_key_is_needed_once_with_any_case_of_bearer() {
    let app = app();
    let k = app.keys.analyst.clone();
    let a = app.get("/openapi.json", None).await;
    assert_eq!(a.error(), (401, "unauthorized"));
    let a = app.get("/openapi.json", Some("not-a-key")).await;
    assert_eq!(a.error(), (401, "unauthorized"));
    let with = |auth: &[String]| {
        let mut b = Request::builder().uri("/v1/whoami");
        for v in auth {
            b = b.header(header::AUTHORIZATION, v);
        }
        b.body(Body::empty()).unwrap()
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let a = app.send(with(&[format!("{scheme} {k}")])).await;
        assert_eq!(a.status, StatusCode::OK, "{scheme}: {}", a.body);
        assert_eq!(a.body["role"], "analyst");
    }
    let a = app.send(with(&[format!("Basic {k}")])).await;
    assert_eq!(a.error(), (401, "unauthorized"));
    let a = app.send(with(&[format!("Bearer {k}x")])).await;
    assert_eq!(a.error(), (401, "unauthorized"));
    // Two headers are refused whichever comes first, even when both are good.
    for pair in [
        [format!("Bearer {k}"), "Bearer wrong".to_string()],
        ["Bearer wrong".to_string(), format!("Bearer {k}")],
        [format!("Bearer {k}"), format!("Bearer {k}")],
    ] {
        let a = app.send(with(&pair)).await;
        assert_eq!(a.error(), (400, "invalid_request"), "{pair:?}");
    }
    // The health checks need none.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn each_role_may_do_only_its_own_work() {
    let app = app();
    let (p, a, o) = (&app.keys.platform, &app.keys.analyst, &app.keys.operator);
    let forbidden = [
        (Method::POST, "/v1/triage", a),
        (Method::POST, "/v1/triage", o),
        (Method::POST, "/v1/triage/batch", a),
        (Method::POST, "/v1/cases", a),
        (Method::POST, "/v1/cases/search", p),
        (Method::POST, "/v1/cases/search", o),
        (Method::GET, "/v1/cases/x", p),
        (Method::DELETE, "/v1/cases/x", a),
        (Method::GET, "/metrics", p),
        (Method::GET, "/metrics", a),
        (Method::POST, "/v1/evals", p),
        (Method::GET, "/v1/evals", a),
    ];
    for (m, path, key) in forbidden {
        let ans = app.call(m.clone(), path, Some(key), Some(json!({"text": "好"}))).await;
        assert_eq!(ans.error(), (403, "forbidden"), "{m} {path}");
    }
    for path in ["/metrics", "/openapi.json", "/v1/cases/x", "/v1/whoami", "/v1/evals"] {
        assert_eq!(app.get(path, None).await.error(), (401, "unauthorized"), "{path}");
    }
    let m = app.get("/metrics", Some(o)).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"));
    assert_eq!(app.get("/v1/evals", Some(o)).await.status, StatusCode::OK);
    let doc = app.get("/openapi.json", Some(o)).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["paths"].get("/readyz").is_some());
    // What the console is told each role may do.
    for (key, want) in
        [(p, json!(["triage", "index"])), (a, json!(["search", "read"])), (o, json!(["metrics", "evaluate"]))]
    {
        let w = app.get("/v1/whoami", Some(key)).await;
        assert_eq!(w.body["permissions"], want, "{}", w.body);
    }
}

#[tokio::test]
async fn bodies_batches_and_texts_are_limited() {
    let mut l = limits();
    l.max_body_bytes = 20_000;
    l.max_request_tokens = 100;
    let app = app_with(l, 128);
    let p = app.keys.platform.clone();

    // Over the body limit, whether the length is declared or not.
    let big = json!({"text": "a".repeat(30_000)}).to_string().into_bytes();
    let a = app.raw("/v1/triage", &p, "application/json", big.clone()).await;
    assert_eq!(a.error(), (413, "payload_too_large"));
    assert!(is_json(&a));
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/triage")
        .header(header::AUTHORIZATION, format!("Bearer {p}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big))
        .unwrap();
    assert_eq!(app.send(req).await.error(), (413, "payload_too_large"));

    // 64 items at most.
    let items = |n: usize, text: &str| json!({"items": vec![json!({"text": text}); n]});
    let a = app.post("/v1/triage/batch", &p, items(65, "好")).await;
    assert_eq!(a.error(), (400, "batch_too_large"));
    assert!(a.body["error"]["message"].as_str().unwrap().contains("65 items"), "{}", a.body);
    assert_eq!(app.post("/v1/triage/batch", &p, items(64, "好")).await.status, StatusCode::OK);

    // Their cost together at most --max-request-tokens (one token a character here), refused before any is judged.
    let sixty = "字".repeat(60);
    let before = *app.judge.judged.lock().unwrap();
    let a = app.post("/v1/triage/batch", &p, items(2, &sixty)).await;
    assert_eq!(a.error(), (400, "batch_too_large"));
    assert!(a.body["error"]["message"].as_str().unwrap().contains("120 encoder tokens"), "{}", a.body);
    assert_eq!(*app.judge.judged.lock().unwrap(), before, "nothing was judged");
    // A single text is bounded by its length, not the token budget.
    let long = "字".repeat(150);
    assert_eq!(app.post("/v1/triage", &p, json!({"text": long})).await.status, StatusCode::OK);
    assert_eq!(app.post("/v1/triage/batch", &p, items(1, &long)).await.status, StatusCode::OK);

    // Texts up to 5,000 characters.
    let a = app.post("/v1/triage", &p, json!({"text": "字".repeat(5001)})).await;
    assert_eq!(a.error(), (400, "text_too_long"));
}

#[tokio::test]
async fn bad_input_gets_its_code() {
    let app = app();
    let (p, a) = (app.keys.platform.clone(), app.keys.analyst.clone());
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"text": ""}), "/v1/triage", "empty_text"),
        (json!({"text": "   \n "}), "/v1/triage", "empty_text"),
        (json!({"text": "\u{200b}\u{200d}\u{feff}"}), "/v1/triage", "empty_text"),
        (json!({"text": "\u{0}\u{0}\t"}), "/v1/triage", "empty_text"),
        (json!({"texts": "x"}), "/v1/triage", "invalid_request"),
        (json!({"text": 5}), "/v1/triage", "invalid_request"),
        (json!({"text": "好", "store": true}), "/v1/triage", "missing_case_id"),
        (json!({"text": "好", "case_id": ""}), "/v1/triage", "invalid_request"),
        (json!({"text": "好", "case_id": "a\u{7}b"}), "/v1/triage", "invalid_request"),
        (json!({"text": "好", "case_id": "c".repeat(201)}), "/v1/triage", "invalid_request"),
        (json!({"text": "好", "context": {"received_at": "11/20/2026"}}), "/v1/triage", "invalid_date"),
        (json!({"items": []}), "/v1/triage/batch", "empty_batch"),
        (json!({"items": [{"text": "好"}, {"text": ""}]}), "/v1/triage/batch", "empty_text"),
        (json!({"case_id": "c", "text": "好", "labels": ["murder"]}), "/v1/cases", "unknown_label"),
        (json!({"case_id": "c", "text": "好", "level": "purple"}), "/v1/cases", "unknown_level"),
        (json!({"case_id": " ", "text": "好"}), "/v1/cases", "invalid_request"),
        (json!({"text": "好", "filters": {"labels": ["violent"]}}), "/v1/cases/search", "unknown_label"),
        (json!({"text": "好", "filters": {"min_level": "purple"}}), "/v1/cases/search", "unknown_level"),
        (json!({"text": "好", "filters": {"received_from": "yesterday"}}), "/v1/cases/search", "invalid_date"),
        (json!({"text": "好", "case_id": "c"}), "/v1/cases/search", "invalid_request"),
        (json!({}), "/v1/cases/search", "invalid_request"),
        (json!({"case_id": "nope"}), "/v1/cases/search", "unknown_case"),
        (json!({"text": "好", "top_k": 0}), "/v1/cases/search", "invalid_request"),
        (json!({"text": "好", "ranking": "bm25"}), "/v1/cases/search", "invalid_request"),
    ];
    for (body, path, want) in cases {
        let key = if path.contains("search") { &a } else { &p };
        let ans = app.post(path, key, body.clone()).await;
        let status = if want == "unknown_case" { 404 } else { 400 };
        assert_eq!(ans.error(), (status, want), "{path} {body}");
    }
    // The item at fault is named.
    let ans = app.post("/v1/triage/batch", &p, json!({"items": [{"text": "好"}, {"text": ""}]})).await;
    assert!(ans.body["error"]["message"].as_str().unwrap().starts_with("items[1]: "), "{}", ans.body);

    let ans = app.raw("/v1/triage", &p, "application/json", b"{\"text\": \"abc".to_vec()).await;
    assert_eq!(ans.error(), (400, "invalid_json"));
    let ans = app.raw("/v1/triage", &p, "application/json", b"{\"text\": \"\xff\xfe\"}".to_vec()).await;
    assert_eq!(ans.error(), (400, "invalid_utf8"));
    let ans = app.raw("/v1/triage", &p, "text/plain", b"{\"text\": \"x\"}".to_vec()).await;
    assert_eq!(ans.error(), (415, "unsupported_media_type"));
    assert_eq!(app.get("/v1/cases/nope", Some(&a)).await.error(), (404, "unknown_case"));
    let ans = app.call(Method::DELETE, "/v1/cases/nope", Some(&p), None).await;
    assert_eq!(ans.error(), (404, "unknown_case"));
    assert_eq!(app.get("/v1/evals/ev-0", Some(&app.keys.operator)).await.error(), (404, "unknown_eval"));
    // Nothing of the above was judged, and the service still answers.
    assert_eq!(*app.judge.judged.lock().unwrap(), 0);
    assert_eq!(app.post("/v1/triage", &p, json!({"text": "咨询一下医保报销比例。"})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn triage_store_search_read_and_delete() {
    let app = app();
    let (p, a) = (app.keys.platform.clone(), app.keys.analyst.clone());

    let threat = "明天上午我就带着汽油去镇政府门口，把那几个当官的一起烧了。";
    let ans = app.post("/v1/triage", &p, json!({"text": threat})).await;
    assert_eq!(ans.status, StatusCode::OK, "{}", ans.body);
    let v = &ans.body;
    assert_eq!((v["level"].as_str(), v["base_level"].as_str()), (Some("red"), Some("red")), "{v}");
    assert_eq!(v["model_version"], "fake-1");
    assert_eq!((v["stored"].as_bool(), v["similar"].as_array().map(Vec::len)), (Some(false), Some(0)), "{v}");
    let flagged: Vec<&str> = v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["flagged"] == true)
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, ["violence"], "{v}");

    // Stored through triage and through /v1/cases.
    let wage = "工地老板拖欠我们十几个工人半年的工资，一共三十多万，去要了好几次都说没钱。";
    let ans = app
        .post(
            "/v1/triage",
            &p,
            json!({"text": wage, "case_id": "wage-1", "store": true, "context": {"district": "西城区", "reporter": "13900001111", "received_at": "2026-11-15"}}),
        )
        .await;
    assert_eq!((ans.status, &ans.body["stored"]), (StatusCode::OK, &json!(true)), "{}", ans.body);
    for (id, text, district) in [
        ("water-1", "我们小区已经停水三天了，物业一直不给说法，老人孩子喝水都成问题。", "东城区"),
        ("road-1", "村口的路坑坑洼洼，下雨天全是泥，学生上学很不方便，希望修一下。", "南城区"),
    ] {
        let ans = app
            .post(
                "/v1/cases",
                &p,
                json!({"case_id": id, "text": text, "labels": ["livelihood"], "level": "yellow", "context": {"district": district}}),
            )
            .await;
        assert_eq!(ans.status, StatusCode::OK, "{}", ans.body);
        assert_eq!(
            (ans.body["case_id"].as_str(), ans.body["level"].as_str(), ans.body["labels"][0].as_str()),
            (Some(id), Some("yellow"), Some("livelihood")),
            "people's labels and level win: {}",
            ans.body
        );
    }

    let c = app.get("/v1/cases/wage-1", Some(&a)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    assert_eq!((c.body["district"].as_str(), c.body["text"].as_str()), (Some("西城区"), Some(wage)));
    assert_eq!(c.body["model_version"], "fake-1");
    assert_eq!(c.body["received_at"], "2026-11-15T00:00:00+08:00");
    assert!(c.body.get("vector").is_none());
    assert!(!c.body.to_string().contains("13900001111"), "the reporter is kept hashed: {}", c.body);

    let q = "包工头欠了我们工人大半年的工资不给，讨了很多次都没用。";
    let s = app.post("/v1/cases/search", &a, json!({"text": q, "top_k": 3})).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["hits"][0]["case"]["case_id"], "wage-1", "{}", s.body);
    let terms: Vec<&str> =
        s.body["hits"][0]["shared"]["terms"].as_array().unwrap().iter().map(|t| t["term"].as_str().unwrap()).collect();
    assert!(terms.contains(&"工资"), "{terms:?}");
    let s = app.post("/v1/cases/search", &a, json!({"text": q, "filters": {"district": "东城区"}})).await;
    let hits = s.body["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["case"]["district"] == "东城区"), "{}", s.body);
    let s = app.post("/v1/cases/search", &a, json!({"text": q, "filters": {"reporter": "13900001111"}})).await;
    let ids: Vec<&str> =
        s.body["hits"].as_array().unwrap().iter().map(|h| h["case"]["case_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["wage-1"], "{}", s.body);
    // By case id: the case itself is left out.
    let s = app.post("/v1/cases/search", &a, json!({"case_id": "wage-1", "top_k": 5})).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    let ids: Vec<&str> =
        s.body["hits"].as_array().unwrap().iter().map(|h| h["case"]["case_id"].as_str().unwrap()).collect();
    assert!(!ids.is_empty() && !ids.contains(&"wage-1"), "{ids:?}");
    // A case kept without its text is searched by its stored term weights.
    let wage_vector = app.store.get("wage-1", true).await.unwrap().unwrap().vector;
    let quiet = triage_cases::CaseRecord::bare("quiet-1", wage_vector, triage_cases::terms::document("工人工资拖欠"));
    app.store.upsert(vec![quiet]).await.unwrap();
    let s = app.post("/v1/cases/search", &a, json!({"case_id": "quiet-1", "ranking": "sparse"})).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["hits"][0]["case"]["case_id"], "wage-1", "{}", s.body);
    assert!(app.store.delete("quiet-1").await.unwrap());

    let d = app.call(Method::DELETE, "/v1/cases/road-1", Some(&p), None).await;
    assert_eq!((d.status, &d.body), (StatusCode::OK, &json!({"case_id": "road-1", "deleted": true})));
    assert_eq!(app.get("/v1/cases/road-1", Some(&a)).await.error(), (404, "unknown_case"));

    // A batch answers in order.
    let items: Vec<Value> = [wage, threat, "咨询一下医保报销比例。"].iter().map(|t| json!({"text": t})).collect();
    let b = app.post("/v1/triage/batch", &p, json!({"items": items})).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let levels: Vec<&str> =
        b.body["items"].as_array().unwrap().iter().map(|i| i["base_level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["blue", "red", "blue"]);
}

#[tokio::test]
async fn a_full_queue_answers_503_overloaded_with_retry_after() {
    let app = app_with(limits(), 64);
    let p = app.keys.platform.clone();
    let held: Vec<Value> = (0..64).map(|i| json!({"text": format!("{HOLD}{i}")})).collect();
    let first = tokio::spawn({
        let (router, p) = (app.router.clone(), p.clone());
        async move {
            let req = Request::builder()
                .method(Method::POST)
                .uri("/v1/triage/batch")
                .header(header::AUTHORIZATION, format!("Bearer {p}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json!({"items": held}).to_string()))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }
    });
    app.until("the batch to fill the queue", |a| a.depth() == 64).await;
    let a = app.post("/v1/triage", &p, json!({"text": "咨询一下公积金提取。"})).await;
    assert_eq!(a.error(), (503, "overloaded"));
    let retry: u64 = a.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    app.judge.gate.set(true);
    assert_eq!(first.await.unwrap(), StatusCode::OK, "the batch that filled the queue completes");
    assert_eq!(app.post("/v1/triage", &p, json!({"text": "咨询一下公积金提取。"})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_request_that_times_out_leaves_the_queue() {
    let mut l = limits();
    l.request_timeout = Duration::from_millis(300);
    let app = app_with(l, 128);
    let p = app.keys.platform.clone();
    let items: Vec<Value> = (0..10).map(|i| json!({"text": format!("{HOLD}{i}")})).collect();
    let a = app.post("/v1/triage/batch", &p, json!({"items": items})).await;
    assert_eq!(a.error(), (408, "request_timeout"));
    // The worker is still held on the first text; the other nine go once it is released.
    app.judge.gate.set(true);
    app.until("the queue to empty", |a| a.depth() == 0).await;
    assert!(*app.judge.judged.lock().unwrap() <= 2, "texts of a request that had gone were judged");
    assert_eq!(app.post("/v1/triage", &p, json!({"text": "咨询一下公积金提取。"})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn readyz_goes_503_when_the_inference_worker_dies() {
    let app = app();
    let p = app.keys.platform.clone();
    let r = app.get("/readyz", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"ready": true, "model_version": "fake-1", "store": "embedded"}));

    let a = app.post("/v1/triage", &p, json!({"text": CRASH})).await;
    assert_eq!(a.error(), (503, "not_ready"));
    let r = app.get("/readyz", None).await;
    assert_eq!(r.error(), (503, "not_ready"));
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("inference worker") && msg.contains("panicked"), "{msg}");
    assert!(is_json(&r));
    // Every later text is refused at once, and the service still answers what needs no judge.
    let a = app.post("/v1/triage", &p, json!({"text": "咨询一下公积金提取。"})).await;
    assert_eq!(a.error(), (503, "not_ready"));
    assert_eq!(app.get("/v1/cases/nope", Some(&app.keys.analyst)).await.error(), (404, "unknown_case"));
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_evaluation_job_runs_on_the_judge_it_is_given() {
    let app = app();
    let o = app.keys.operator.clone();
    let lines = [
        r#"{"id": "e1", "text": "我明天就带汽油去把他家烧了。", "labels": ["violence"], "level": "red"}"#,
        r#"{"id": "e2", "text": "咨询一下医保报销比例。", "labels": [], "level": "blue"}"#,
    ];
    let a = app.raw("/v1/evals?name=two.jsonl", &o, "application/x-ndjson", lines.join("\n").into_bytes()).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!((a.body["total"].as_u64(), a.body["model_version"].as_str()), (Some(2), Some("fake-1")));
    let id = a.body["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let j = app.get(&format!("/v1/evals/{id}"), Some(&o)).await;
        if j.body["status"] == "done" || j.body["status"] == "failed" {
            break j.body;
        }
        assert!(Instant::now() < deadline, "the job did not finish: {}", j.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["report"]["model_version"], "fake-1", "{job}");
    assert_eq!(job["red_recall"].as_f64(), Some(1.0), "{job}");
    let a = app.raw("/v1/evals", &o, "application/x-ndjson", b"{\"id\": \"x\"".to_vec()).await;
    assert_eq!(a.error(), (400, "invalid_line"));
}
