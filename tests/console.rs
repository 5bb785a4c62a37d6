//! The web console in a real headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs when missing), driven through the DevTools protocol by
//! `headless_chrome`, against the real `triage serve` on loopback with the
//! real model. A missing browser fails these tests; it never skips them.
//! Each test saves a PNG under `<target>/console-screenshots/`.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::Server;

const PLATFORM: &str = "console-platform-key";
const ANALYST: &str = "console-analyst-key";
const OPERATOR: &str = "console-operator-key";
const ADMIN: &str = "console-admin-key";

/// One test at a time: each starts a service and a browser, and two cores
/// running several of each at once would only make every wait longer.
static SERIAL: Mutex<()> = Mutex::new(());

const RED: &str = "明天上午我就带着汽油去镇政府门口，把那几个当官的一起烧了。";
const HOSTILE: &str =
    "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">拆迁款到现在没发，我要去市里上访。";

struct Console {
    _serial: MutexGuard<'static, ()>,
    server: Server,
    _browser: Browser,
    tab: Arc<Tab>,
    data: tempfile::TempDir,
}

fn screenshots() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp, wherever the target directory is.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keys_file(dir: &Path) -> PathBuf {
    let mut s = String::new();
    for (role, key) in [("platform", PLATFORM), ("analyst", ANALYST), ("operator", OPERATOR), ("admin", ADMIN)] {
        let h = hex::encode(Sha256::digest(key.as_bytes()));
        s.push_str(&format!("[[key]]\nname = \"{role}-console\"\nrole = \"{role}\"\nsha256 = \"{h}\"\n\n"));
    }
    let p = dir.join("console-keys.toml");
    std::fs::write(&p, s).unwrap();
    p
}

impl Console {
    fn open() -> Console {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let data = tempfile::tempdir().unwrap();
        let keys = keys_file(data.path());
        let server = Server::start(data.path(), &["--keys", keys.to_str().unwrap()]);
        let chrome = headless_chrome::browser::default_executable().unwrap_or_else(|e| {
            panic!("no Chromium found ({e}): install it with `apt-get install -y chromium` (.ci/run does)")
        });
        let options = LaunchOptions::default_builder()
            .path(Some(chrome))
            .headless(true)
            // Tests run as root in CI containers, where Chromium's sandbox cannot start.
            .sandbox(false)
            .window_size(Some((1280, 1700)))
            .idle_browser_timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let browser = Browser::new(options).expect("start headless Chromium");
        let tab = browser.new_tab().unwrap();
        tab.set_default_timeout(Duration::from_secs(60));
        tab.navigate_to(&server.url("/")).unwrap().wait_until_navigated().unwrap();
        Console { _serial: serial, server, _browser: browser, tab, data }
    }

    /// The value of a JavaScript expression, through JSON.
    fn js(&self, expr: &str) -> Value {
        let r = self.tab.evaluate(&format!("JSON.stringify(({expr}))"), false).unwrap();
        match r.value {
            Some(Value::String(s)) => serde_json::from_str(&s).unwrap(),
            other => panic!("{expr}: {other:?} ({:?})", r.description),
        }
    }

    fn wait(&self, cond: &str, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        // An element the condition reads may not exist yet (a page still loading).
        let guarded = format!("(() => {{ try {{ return !!({cond}); }} catch (e) {{ return false; }} }})()");
        while self.js(&guarded) != json!(true) {
            if Instant::now() > deadline {
                self.shot(&format!("{name}-timeout"));
                panic!(
                    "waited 300 s for {cond}; the page says {}",
                    self.js("document.getElementById('error').textContent")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, selector: &str) {
        self.tab.wait_for_element(selector).unwrap().click().unwrap();
    }

    fn type_into(&self, selector: &str, text: &str) {
        self.tab.wait_for_element(selector).unwrap().type_into(text).unwrap();
    }

    /// Sets a field's value as a paste would (typing `<` goes through key
    /// definitions that differ between keyboard layouts).
    fn paste(&self, selector: &str, text: &str) {
        self.tab.wait_for_element(selector).unwrap();
        self.js(&format!("document.querySelector({}).value = {}", json!(selector), json!(text)));
    }

    fn visible(&self, id: &str) -> bool {
        self.js(&format!("(e => !!e && !e.hidden && e.offsetParent !== null)(document.getElementById('{id}'))"))
            == json!(true)
    }

    fn sign_in(&self, key: &str) {
        self.type_into("#signin-key", key);
        self.click("#signin-form button[type=submit]");
        self.wait("document.getElementById('who').textContent !== ''", "sign-in");
    }

    fn shot(&self, name: &str) -> PathBuf {
        let png = self.tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = screenshots().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

#[test]
fn sign_in_keeps_the_key_out_of_the_url_and_a_bad_key_is_refused() {
    let c = Console::open();
    assert!(c.visible("page-signin"));
    c.type_into("#signin-key", "not-a-key");
    c.click("#signin-form button[type=submit]");
    c.wait("document.getElementById('error').textContent.includes('unauthorized')", "bad-key");
    assert!(c.visible("page-signin") && !c.visible("nav"));
    assert_eq!(c.js("sessionStorage.getItem('triage.key')"), Value::Null);

    c.sign_in(PLATFORM);
    assert_eq!(c.js("sessionStorage.getItem('triage.key')"), json!(PLATFORM));
    let url = c.tab.get_url();
    assert!(!url.contains(PLATFORM), "the key is in the URL: {url}");
    assert!(c.visible("page-triage"));
    c.shot("signin");
    // A reload keeps the session (sessionStorage), sign-out forgets it.
    c.tab.reload(false, None).unwrap().wait_until_navigated().unwrap();
    c.wait("document.getElementById('who').textContent.includes('platform')", "reload");
    c.click("#signout");
    assert_eq!(c.js("sessionStorage.getItem('triage.key')"), Value::Null);
    assert!(c.visible("page-signin"));
    assert!(!c.server.log.lock().unwrap().contains(PLATFORM), "the key reached the log");
}

#[test]
fn a_red_text_is_triaged_with_its_evidence_highlighted() {
    let c = Console::open();
    c.sign_in(PLATFORM);
    c.type_into("#triage-input", RED);
    c.click("#triage-submit");
    c.wait("!document.getElementById('triage-result').hidden", "triage");
    assert_eq!(c.js("document.getElementById('triage-level').className"), json!("level level-red"));
    let marks = c.js("Array.from(document.querySelectorAll('#triage-text mark')).map(m => m.textContent)");
    let marks: Vec<&str> = marks.as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(marks.iter().any(|m| m.contains("汽油")), "{marks:?}");
    // The highlighted text is the text: nothing added, nothing lost.
    assert_eq!(c.js("document.getElementById('triage-text').textContent"), json!(RED));
    assert_eq!(c.js("document.querySelectorAll('#triage-labels tr.label-row').length"), json!(5));
    assert!(c.js("document.querySelectorAll('#triage-labels .flag-yes').length").as_u64().unwrap() >= 1);
    assert!(c.js("document.querySelectorAll('#triage-reasons li').length").as_u64().unwrap() >= 1);
    c.shot("triage");
}

/// Three cases in two districts, indexed through the API as the platform would.
fn index_cases(s: &Server) {
    let cases = [
        ("wage-1", "工地老板拖欠我们十几个工人半年的工资，一共三十多万，去要了好几次都说没钱。", "东城区"),
        ("wage-2", "包工头欠我们班组八个人三个月工钱，年底了还不结，大家都急着回家过年。", "西城区"),
        ("water-1", "我们小区已经停水三天了，物业一直不给说法，老人孩子喝水都成问题。", "东城区"),
    ];
    for (id, text, district) in cases {
        let (st, v) = s.post(
            "/v1/cases",
            PLATFORM,
            json!({"case_id": id, "text": text, "context": {"district": district, "received_at": "2026-11-15"}}),
        );
        assert_eq!(st, 200, "{v}");
    }
}

#[test]
fn a_search_with_filters_shows_scores_shared_labels_and_terms() {
    let c = Console::open();
    index_cases(&c.server);
    c.sign_in(ANALYST);
    assert!(c.visible("page-search"));
    c.type_into("#search-text", "包工头拖欠工人工资好几个月了，讨了很多次都没用。");
    c.type_into("#search-district", "东城区");
    c.click("#search-submit");
    c.wait("document.querySelectorAll('#search-results .hit').length > 0", "search");
    let districts = c.js("Array.from(document.querySelectorAll('.hit .district')).map(d => d.textContent)");
    let districts = districts.as_array().unwrap();
    assert!(!districts.is_empty() && districts.iter().all(|d| d == "东城区"), "{districts:?}");
    let first = c.js("document.querySelector('.hit .case-id').textContent");
    assert_eq!(first, json!("wage-1"), "the wage case ranks first");
    assert!(c.js("document.querySelector('.hit .score').textContent").as_str().unwrap().starts_with("相似度 0."));
    // Shared terms are highlighted in the hit's text, and each is in the query.
    let shared = c
        .js("Array.from(document.querySelectorAll('.hit')[0].querySelectorAll('mark.shared')).map(m => m.textContent)");
    let shared: Vec<&str> = shared.as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(shared.iter().any(|t| t.contains("工人")), "{shared:?}");
    c.shot("search");

    // Open the case; an analyst reads it but has no delete.
    c.click(".hit button.case-id");
    c.wait("!document.getElementById('case-view').hidden", "case");
    assert_eq!(c.js("document.getElementById('case-id').textContent"), json!("wage-1"));
    assert!(!c.visible("case-delete"));
    c.shot("case");
}

#[test]
fn an_evaluation_runs_from_upload_to_report() {
    let c = Console::open();
    let data = std::env::var_os("TRIAGE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let dev = std::fs::read_to_string(data.join("dev.jsonl")).expect("the labelled dev set (TRIAGE_DATA)");
    let set: String = dev.lines().take(16).map(|l| format!("{l}\n")).collect();
    let file = c.data.path().join("dev-16.jsonl");
    std::fs::write(&file, set).unwrap();

    c.sign_in(OPERATOR);
    assert!(c.visible("page-evaluate") && !c.visible("tab-triage") && !c.visible("tab-search"));
    c.tab.wait_for_element("#eval-file").unwrap().set_input_files(&[file.to_str().unwrap()]).unwrap();
    c.click("#eval-submit");
    c.wait("!document.getElementById('eval-progress').hidden", "progress");
    c.wait("document.getElementById('eval-status').dataset.status === 'done'", "eval");
    assert_eq!(c.js("document.getElementById('eval-bar').value"), json!(16));
    assert_eq!(c.js("document.querySelectorAll('#eval-labels tr').length"), json!(6));
    let cells = c.js("Array.from(document.querySelectorAll('#eval-confusion td')).map(td => Number(td.textContent))");
    let cells = cells.as_array().unwrap();
    assert_eq!(cells.len(), 16);
    assert_eq!(cells.iter().map(|v| v.as_u64().unwrap()).sum::<u64>(), 16);
    assert_eq!(c.js("document.querySelectorAll('#eval-sweep svg path.sweep-line').length"), json!(5));
    assert!(c.js("document.getElementById('eval-headline').textContent").as_str().unwrap().contains("95% 区间"));
    assert!(c.js("document.getElementById('eval-download').href").as_str().unwrap().starts_with("blob:"));
    // The report on the page is the service's: the same macro-F1 as GET /v1/evals.
    let (_, list, _) = c.server.call("GET", "/v1/evals", Some(OPERATOR), None);
    let f1 = list["evals"][0]["macro_f1"].as_f64().unwrap();
    c.wait("document.querySelectorAll('#eval-history table.history tr').length === 2", "history");
    let shown =
        c.js("document.querySelector('#eval-history table.history tr:nth-child(2) td:nth-child(5)').textContent");
    assert_eq!(shown, json!(format!("{f1:.3}")));
    c.shot("evaluate");
}

#[test]
fn a_role_without_rights_sees_no_forbidden_action() {
    let c = Console::open();
    index_cases(&c.server);
    // The analyst: search only; the opened case has no delete.
    c.sign_in(ANALYST);
    assert!(c.visible("tab-search") && !c.visible("tab-triage") && !c.visible("tab-evaluate"));
    c.type_into("#search-text", "拖欠工资");
    c.click("#search-submit");
    c.wait("document.querySelectorAll('#search-results .hit').length > 0", "search");
    c.click(".hit button.case-id");
    c.wait("!document.getElementById('case-view').hidden", "case");
    assert!(!c.visible("case-delete"));
    c.shot("roles-analyst");
    c.click("#signout");

    // The operator: evaluation only.
    c.sign_in(OPERATOR);
    assert!(c.visible("tab-evaluate") && !c.visible("tab-search") && !c.visible("tab-triage"));
    c.click("#signout");

    // The admin sees and uses the delete the others lack.
    c.sign_in(ADMIN);
    assert!(c.visible("tab-triage") && c.visible("tab-search") && c.visible("tab-evaluate"));
    c.click("#tab-search");
    c.type_into("#search-text", "拖欠工资");
    c.click("#search-submit");
    c.wait("document.querySelectorAll('#search-results .hit').length > 0", "search-admin");
    let id = c.js("document.querySelector('.hit .case-id').textContent");
    c.click(".hit button.case-id");
    c.wait("!document.getElementById('case-view').hidden", "case-admin");
    assert!(c.visible("case-delete"));
    c.click("#case-delete");
    c.click("#case-delete-confirm");
    c.wait("document.getElementById('case-view').hidden", "delete");
    let (st, _, _) = c.server.call("GET", &format!("/v1/cases/{}", id.as_str().unwrap()), Some(ANALYST), None);
    assert_eq!(st, 404, "the case was not deleted");
}

#[test]
fn a_hostile_text_is_rendered_as_text() {
    let c = Console::open();
    // The page is served with a CSP that forbids inline script.
    let resp = ureq::get(&c.server.url("/")).call().unwrap();
    let csp = resp.header("Content-Security-Policy").unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");

    c.sign_in(ADMIN);
    c.click("#tab-triage");
    c.paste("#triage-input", HOSTILE);
    c.click("#page-triage details summary");
    c.type_into("#triage-case-id", "hostile-1");
    c.click("#triage-store");
    c.click("#triage-submit");
    c.wait("!document.getElementById('triage-result').hidden", "triage");
    assert_eq!(c.js("document.getElementById('triage-text').textContent"), json!(HOSTILE));
    // The same text in a search hit and in the opened case.
    c.click("#tab-search");
    c.paste("#search-text", HOSTILE);
    c.click("#search-submit");
    c.wait("document.querySelectorAll('#search-results .hit').length > 0", "search");
    c.click(".hit button.case-id");
    c.wait("!document.getElementById('case-view').hidden", "case");
    assert_eq!(c.js("document.getElementById('case-text').textContent"), json!(HOSTILE));
    // Nothing ran and no element came from the text.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.js("typeof window.__pwned"), json!("undefined"));
    assert_eq!(c.js("document.querySelectorAll('main script, main img').length"), json!(0));
    c.click("#tab-triage");
    c.shot("hostile");
}
