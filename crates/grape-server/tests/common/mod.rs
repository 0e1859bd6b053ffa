//! The harness of the server tests: a `grape serve` process on free ports, called with reqwest.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: Client,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_grape"));
        cmd.arg("serve").arg("--storage-path").arg(dir).arg("--host").arg("127.0.0.1");
        if !env.iter().any(|(k, _)| *k == "GRAPE__SERVICE__HTTP_PORT") {
            cmd.arg("--http-port").arg(port.to_string());
        }
        if !env.iter().any(|(k, _)| *k == "GRAPE__SERVICE__GRPC_PORT") {
            cmd.arg("--grpc-port").arg(free_port().to_string());
        }
        cmd.args(extra).env("GRAPE__LOG_LEVEL", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
        let port = match env.iter().find(|(k, _)| *k == "GRAPE__SERVICE__HTTP_PORT") {
            Some((_, p)) => p.parse().unwrap(),
            None => port,
        };
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start grape");
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), client: Client::new() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = server.client.get(format!("{}/readyz", server.base)).send() {
                if r.status().is_success() {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = self.client.request(method.parse().unwrap(), self.url(path));
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let resp = req.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert_eq!(status, StatusCode::OK, "{method} {path}: {v}");
        assert_eq!(v["status"], "ok");
        assert!(v["time"].as_f64().is_some());
        v["result"].clone()
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        // SAFETY: kill with a valid pid of our own child and a standard signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::mem::forget(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts an error answer: the status and Qdrant's body with a message containing `needle`.
pub fn assert_error(got: (StatusCode, Value), status: StatusCode, needle: &str) {
    let (s, body) = got;
    assert_eq!(s, status, "body: {body}");
    let msg = body["status"]["error"].as_str().unwrap_or_else(|| panic!("not a Qdrant error body: {body}"));
    assert!(msg.contains(needle), "error {msg:?} does not mention {needle:?}");
    assert!(body["time"].as_f64().is_some());
}

pub fn create(s: &Server, name: &str, dim: usize) {
    let r = s.ok(
        "PUT",
        &format!("/collections/{name}"),
        Some(json!({"vectors": {"size": dim, "distance": "Dot"}})),
    );
    assert_eq!(r, json!(true));
}
