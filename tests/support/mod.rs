//! The black-box test harness: start the real `triage serve` on a free
//! loopback port with a temporary data dir and keys file, call it, stop it.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

pub const PLATFORM: &str = "test-platform-key";
pub const ANALYST: &str = "test-analyst-key";
pub const OPERATOR: &str = "test-operator-key";

pub struct Server {
    pub child: Child,
    base: String,
    data: PathBuf,
    extra: Vec<String>,
    /// Everything the server wrote to stderr (its log), read by a thread so the pipe never fills.
    pub log: Arc<Mutex<String>>,
}

fn keys_file(dir: &Path) -> PathBuf {
    let mut s = String::new();
    for (name, role, key) in
        [("platform", "platform", PLATFORM), ("analyst", "analyst", ANALYST), ("operator", "operator", OPERATOR)]
    {
        let h = hex::encode(Sha256::digest(key.as_bytes()));
        s.push_str(&format!("[[key]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{h}\"\n\n"));
    }
    let p = dir.join("keys.toml");
    std::fs::write(&p, s).unwrap();
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn(data.to_path_buf(), extra)
    }

    pub fn spawn(data: PathBuf, extra: Vec<String>) -> Server {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_triage"));
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(&data);
        if !extra.iter().any(|a| a == "--keys") {
            cmd.arg("--keys").arg(keys_file(&data));
        }
        if !extra.iter().any(|a| a == "--policy") {
            cmd.arg("--policy").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/policy.toml"));
        }
        let mut child = cmd
            .args(&extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start triage serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut s = Server { child, base: format!("http://127.0.0.1:{port}"), data, extra, log };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!("triage serve exited with {status}:\n{}", self.log.lock().unwrap());
            }
            if let Ok(r) = ureq::get(&format!("{}/readyz", self.base)).timeout(Duration::from_secs(2)).call() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("triage serve was not ready within 180 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Status and JSON body of a request; `key` None sends no Authorization.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, Option<String>) {
        let mut req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(300));
        if let Some(k) = key {
            req = req.set("Authorization", &format!("Bearer {k}"));
        }
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = resp.status();
        let retry = resp.header("Retry-After").map(str::to_string);
        let text = resp.into_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), retry)
    }

    pub fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let (s, v, _) = self.call("POST", path, Some(key), Some(body));
        (s, v)
    }

    pub fn raw(&self, path: &str, key: &str, content_type: &str, bytes: &[u8]) -> (u16, Value) {
        let r = ureq::post(&self.url(path))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", content_type)
            .send_bytes(bytes);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (resp.status(), resp.into_json().unwrap())
    }

    pub fn stop(mut self) -> PathBuf {
        // SIGTERM: graceful shutdown, the store is flushed and unlocked.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        std::mem::take(&mut self.data)
    }

    pub fn kill9(mut self) -> PathBuf {
        let _ = Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        std::mem::take(&mut self.data)
    }

    pub fn restart(self) -> Server {
        let extra = self.extra.clone();
        let data = self.stop();
        Self::spawn(data, extra)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {v}"))
}

pub fn rules(v: &Value) -> Vec<String> {
    v["escalations"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap().to_string()).collect()
}

pub fn kill(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

// Raw sockets, for what an HTTP client library would not send.

pub fn connect(s: &Server) -> TcpStream {
    let addr = s.url("").trim_start_matches("http://").to_string();
    let c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// Everything the server sends until it closes the connection or `within` passes;
/// `true` when it closed.
pub fn read_until_closed(c: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        c.set_read_timeout(Some(left)).unwrap();
        match c.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return (out, false),
            // A reset is the server closing too.
            Err(_) => return (out, true),
        }
    }
}

/// One response read off a connection: status, headers (lower-cased names), body.
pub fn read_response(c: &mut TcpStream, within: Duration) -> Option<(u16, String, Vec<u8>)> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                let status = head.split_whitespace().nth(1)?.parse().ok()?;
                return Some((status, head, out[end + 4..end + 4 + len].to_vec()));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        c.set_read_timeout(Some(left)).unwrap();
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}
