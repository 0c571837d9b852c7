//! A real browser for the tests: Debian's chromium, headless, driven over its DevTools
//! protocol (a websocket per page). It records every console error, uncaught exception,
//! failed load and dialog the pages cause, so a test can require that there were none.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

pub struct Browser {
    child: Child,
    page: WebSocket<TcpStream>,
    next_id: u64,
    /// Problems the pages reported, as text.
    problems: Vec<String>,
    _profile: tempfile::TempDir,
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("no chromium here: install Debian's `chromium` (scripts/test.sh does)")
}

impl Browser {
    pub fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1280,1600",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port = devtools_port(profile.path());
        let targets: Value = serde_json::from_str(&http_get(port, "/json/list").1).unwrap();
        let url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
        let (page, _) = tungstenite::client(url.as_str(), stream).expect("devtools websocket");
        let mut browser =
            Browser { child, page, next_id: 0, problems: Vec::new(), _profile: profile };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Sends a DevTools command and returns its result; events read meanwhile are recorded.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.page.send(Message::text(message)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            if let Some(v) = self.read()
                && v["id"] == id
            {
                assert!(v["error"].is_null(), "{method} failed: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    /// One message, if one arrives within the read timeout; events are recorded.
    fn read(&mut self) -> Option<Value> {
        match self.page.read() {
            Ok(Message::Text(text)) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                self.record(&v);
                Some(v)
            }
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("devtools connection: {e}"),
        }
    }

    fn record(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.problems.push(format!("console error: {}", p["args"]))
            }
            Some("Runtime.exceptionThrown") => {
                self.problems.push(format!("exception: {}", p["exceptionDetails"]))
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.problems.push(format!("log error: {}", p["entry"]["text"]))
            }
            Some("Page.javascriptDialogOpening") => {
                self.problems.push(format!("dialog opened: {}", p["message"]))
            }
            _ => {}
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "{url} did not finish loading");
            if self.read().is_some_and(|v| v["method"] == "Page.loadEventFired") {
                return;
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    pub fn text(&mut self, expression: &str) -> String {
        self.eval(expression).as_str().unwrap_or_default().to_string()
    }

    /// Re-evaluates `expression` (reading events meanwhile) until `done` accepts its value.
    pub fn wait_for(
        &mut self,
        limit: Duration,
        expression: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.eval(expression);
            if done(&value) {
                return value;
            }
            assert!(Instant::now() < deadline, "{expression} is still {value}");
            let _ = self.read();
        }
    }

    /// Console errors, exceptions, failed loads and dialogs so far.
    pub fn problems(&mut self) -> Vec<String> {
        while self.read().is_some() {}
        self.problems.clone()
    }

    /// The page as a PNG.
    pub fn screenshot_png(&mut self) -> Vec<u8> {
        use base64::Engine;
        let params = json!({ "format": "png", "captureBeyondViewport": true });
        let shot = self.call("Page.captureScreenshot", params);
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port chromium chose, from the file it writes into its profile.
fn devtools_port(profile: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(port) =
            std::fs::read_to_string(&file).ok().and_then(|t| t.lines().next()?.parse().ok())
        {
            return port;
        }
        assert!(Instant::now() < deadline, "chromium did not start its DevTools server");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.1 GET on localhost: (status code, body). The body is read by its
/// Content-Length (chromium's DevTools server keeps the connection open), or to the end.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap() == 0 {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).unwrap();
        }
        None => {
            reader.read_to_end(&mut body).unwrap();
        }
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}
