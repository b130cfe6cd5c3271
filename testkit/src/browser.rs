//! Headless Chromium for tests, driven over WebDriver by Debian's `chromedriver` — plain
//! HTTP and JSON, spoken with reqwest, so no browser-automation stack (and no npm) is
//! needed.
//!
//! [`Browser::start`] runs `chromedriver` on a free port and opens a session: Chromium
//! headless, with a fresh profile, no sandbox (tests may run as root), no GPU, no
//! background networking, component updates or sync (nothing but the page talks to the
//! network), autoplay allowed, TLS errors accepted (the cluster's own CA). Besides what
//! WebDriver gives (navigation, scripts, elements), the session records what the page
//! requested and logged (chromedriver's performance and browser logs), so a test can
//! insist that a page requests nothing outside its origin and throws no uncaught error.
//!
//! Binaries: `SEALCAST_TEST_CHROMIUM` (else `chromium`, then `chromium-browser` on `PATH`)
//! and `SEALCAST_TEST_CHROMEDRIVER` (else `chromedriver` on `PATH` or in
//! `/usr/lib/chromium`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::process::Spawned;

/// Chromium to drive, if not the one on `PATH`.
pub const CHROMIUM_VAR: &str = "SEALCAST_TEST_CHROMIUM";
/// chromedriver to use, if not the one on `PATH`.
pub const CHROMEDRIVER_VAR: &str = "SEALCAST_TEST_CHROMEDRIVER";

/// The key WebDriver names an element reference by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How often [`Browser::wait_for`] evaluates its condition.
const POLL: Duration = Duration::from_millis(200);

/// What a page did that a test may want to know about, gathered from chromedriver's logs.
#[derive(Debug, Clone, Default)]
pub struct PageEvents {
    /// Every http(s) and ws(s) URL requested, in order.
    pub requests: Vec<String>,
    /// Uncaught exceptions and rejected promises (`Uncaught ...`).
    pub errors: Vec<String>,
    /// Console errors and warnings, failed loads, HTTP errors: context for a failure.
    pub notes: Vec<String>,
}

/// A Chromium session. Closed (browser and driver) by [`Browser::quit`] or when dropped.
#[derive(Debug)]
pub struct Browser {
    /// Kept for the session's lifetime: killed when the browser is dropped.
    _driver: Spawned,
    client: reqwest::Client,
    /// `127.0.0.1:PORT` of chromedriver.
    authority: String,
    session: String,
    events: PageEvents,
    _profile: tempfile::TempDir,
}

/// How [`Browser::start_with`] starts Chromium beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct BrowserOptions {
    /// A fake camera and microphone, granted without asking
    /// (`--use-fake-device-for-media-stream --use-fake-ui-for-media-stream`).
    pub fake_media: bool,
    /// SHA-256 hashes (base64) of server keys' SubjectPublicKeyInfo whose certificates it
    /// takes without checking their chain (`--ignore-certificate-errors-spki-list`): a
    /// cluster CA's server over WebTransport, which `acceptInsecureCerts` does not cover.
    /// With them, `--webtransport-developer-mode` too: Chromium refuses WebTransport to a
    /// certificate that no publicly known root issued (a local CA's, even one installed
    /// as trusted), unless it is pinned with `serverCertificateHashes`.
    pub trusted_spki: Vec<String>,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a `width`x`height` window.
    pub async fn start(width: u32, height: u32) -> Result<Self> {
        Self::start_with(width, height, BrowserOptions::default()).await
    }

    /// [`Browser::start`] with `options`.
    pub async fn start_with(width: u32, height: u32, options: BrowserOptions) -> Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("sealcast-chromium-")
            .tempdir()?;
        let chromium = chromium()?;
        // With `--port=0` chromedriver picks a port free on one address family and then
        // binds it on the other too, which another process may hold ("bind() failed:
        // Address already in use"): a few tries, each with a fresh pick.
        let mut tries = 0;
        let (mut driver, port) = loop {
            tries += 1;
            let mut command = tokio::process::Command::new(chromedriver()?);
            command.arg("--port=0");
            let mut driver = Spawned::start(
                "chromedriver",
                command,
                &profile.path().join(format!("chromedriver-{tries}.log")),
            )?;
            match driver
                .line(
                    "ChromeDriver was started successfully on port ",
                    Duration::from_secs(30),
                )
                .await
            {
                Ok(port) => break (driver, port),
                Err(e) if tries < 3 => eprintln!("chromedriver did not start ({e:#}); again"),
                Err(e) => return Err(e),
            }
        };
        driver.drain();
        let authority = format!("127.0.0.1:{}", port.trim_end_matches('.'));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--mute-audio".to_owned(),
            "--autoplay-policy=no-user-gesture-required".to_owned(),
            format!("--window-size={width},{height}"),
            format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ),
        ];
        if !options.trusted_spki.is_empty() {
            args.push(format!(
                "--ignore-certificate-errors-spki-list={}",
                options.trusted_spki.join(",")
            ));
            args.push("--webtransport-developer-mode".to_owned());
        }
        if options.fake_media {
            args.push("--use-fake-device-for-media-stream".to_owned());
            args.push("--use-fake-ui-for-media-stream".to_owned());
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "acceptInsecureCerts": true,
                    "goog:chromeOptions": { "binary": chromium, "args": args },
                    "goog:loggingPrefs": { "performance": "ALL", "browser": "ALL" },
                }
            }
        });
        let value = command_at(
            &client,
            &authority,
            reqwest::Method::POST,
            "/session",
            capabilities,
        )
        .await
        .with_context(|| format!("starting Chromium; chromedriver's log:\n{}", driver.log()))?;
        let session = value["sessionId"]
            .as_str()
            .context("chromedriver returned no session id")?
            .to_owned();
        Ok(Browser {
            _driver: driver,
            client,
            authority,
            session,
            events: PageEvents::default(),
            _profile: profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let path = format!("/session/{}{path}", self.session);
        command_at(&self.client, &self.authority, method, &path, body).await
    }

    /// Opens `url` (returns once the page has loaded).
    pub async fn goto(&mut self, url: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments[0]` is `arg`) in the page; its return
    /// value.
    pub async fn execute(&self, script: &str, arg: Value) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [arg] }),
        )
        .await
    }

    /// Evaluates `script` (as [`Browser::execute`]) every 200 ms until it returns
    /// something truthy, which it returns; `{ "failed": reason }` fails at once, and so
    /// does a page event `check` refuses. An error naming `what` at `timeout`.
    pub async fn wait_for(
        &mut self,
        what: &str,
        script: &str,
        arg: Value,
        timeout: Duration,
        check: impl Fn(&PageEvents) -> Result<()>,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.execute(script, arg.clone()).await?;
            self.collect_events().await?;
            check(&self.events).with_context(|| format!("while waiting until {what}"))?;
            if let Some(reason) = value.get("failed") {
                bail!("while waiting until {what}: {reason}");
            }
            if truthy(&value) {
                return Ok(value);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting until {what}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Result<Element> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({ "using": "css selector", "value": selector }),
            )
            .await
            .with_context(|| format!("finding {selector}"))?;
        let id = value[ELEMENT]
            .as_str()
            .with_context(|| format!("{selector}: no element reference in {value}"))?;
        Ok(Element(id.to_owned()))
    }

    /// Clicks `element` as a user would (an `<option>` is selected).
    pub async fn click(&self, element: &Element) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            json!({}),
        )
        .await
        .map(drop)
    }

    /// Replaces the text of the input `element` by typing `text`.
    pub async fn fill(&self, element: &Element, text: &str) -> Result<()> {
        let path = format!("/element/{}", element.0);
        self.call(reqwest::Method::POST, &format!("{path}/clear"), json!({}))
            .await?;
        self.call(
            reqwest::Method::POST,
            &format!("{path}/value"),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    /// A PNG of the whole page (beyond the window) at `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let shot = self
            .call(
                reqwest::Method::POST,
                "/goog/cdp/execute",
                json!({
                    "cmd": "Page.captureScreenshot",
                    "params": { "format": "png", "captureBeyondViewport": true },
                }),
            )
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().context("no screenshot data")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// What the page requested and logged since the session started.
    pub async fn events(&mut self) -> Result<&PageEvents> {
        self.collect_events().await?;
        Ok(&self.events)
    }

    /// Moves chromedriver's new log entries into [`PageEvents`].
    async fn collect_events(&mut self) -> Result<()> {
        let performance = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                json!({ "type": "performance" }),
            )
            .await?;
        for entry in performance.as_array().into_iter().flatten() {
            let Some(message) = entry["message"]
                .as_str()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
            else {
                continue;
            };
            let (method, params) = (&message["message"]["method"], &message["message"]["params"]);
            match method.as_str() {
                Some("Network.requestWillBeSent") => {
                    let url = params["request"]["url"].as_str().unwrap_or_default();
                    if ["http:", "https:", "ws:", "wss:"]
                        .iter()
                        .any(|s| url.starts_with(s))
                    {
                        self.events.requests.push(url.to_owned());
                    }
                }
                Some("Network.responseReceived") => {
                    let status = params["response"]["status"].as_u64().unwrap_or(0);
                    if status >= 400 {
                        let url = params["response"]["url"].as_str().unwrap_or_default();
                        self.events.notes.push(format!("HTTP {status} for {url}"));
                    }
                }
                Some("Network.loadingFailed") => {
                    let reason = params["errorText"].as_str().unwrap_or("failed");
                    // Aborted loads are normal when a player switches rungs or stops.
                    if reason != "net::ERR_ABORTED" {
                        self.events
                            .notes
                            .push(format!("a request failed: {reason}"));
                    }
                }
                _ => {}
            }
        }
        let browser = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                json!({ "type": "browser" }),
            )
            .await?;
        for entry in browser.as_array().into_iter().flatten() {
            let text = entry["message"].as_str().unwrap_or_default().to_owned();
            if entry["source"] == "javascript" && text.contains("Uncaught") {
                self.events.errors.push(text);
            } else if matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")) {
                self.events.notes.push(text);
            }
        }
        Ok(())
    }

    /// Closes the browser and stops chromedriver.
    pub async fn quit(mut self) -> Result<()> {
        let session = std::mem::take(&mut self.session);
        let path = format!("/session/{session}");
        let closed = command_at(
            &self.client,
            &self.authority,
            reqwest::Method::DELETE,
            &path,
            Value::Null,
        )
        .await;
        closed.map(drop)
    }
}

impl Drop for Browser {
    /// A session a test did not quit (it failed or panicked) is closed here, blocking and
    /// without an async runtime, so that no Chromium outlives its test.
    fn drop(&mut self) {
        if self.session.is_empty() {
            return;
        }
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.session, self.authority
        );
        if let Ok(mut socket) = std::net::TcpStream::connect(&self.authority) {
            let _ = socket.set_read_timeout(Some(Duration::from_secs(20)));
            if socket.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = socket.read_to_end(&mut answer);
            }
        }
    }
}

/// A page element, as WebDriver refers to it.
#[derive(Debug, Clone)]
pub struct Element(String);

/// A WebDriver command; its `value`, or the error WebDriver reports.
async fn command_at(
    client: &reqwest::Client,
    authority: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    let mut request = client.request(method.clone(), format!("http://{authority}{path}"));
    if !body.is_null() {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("WebDriver {method} {path}"))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("WebDriver {method} {path}: not JSON"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "WebDriver {method} {path}: {} {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or_default()
        );
    }
    Ok(value)
}

/// JavaScript's truthiness of a returned value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The Chromium binary.
fn chromium() -> Result<PathBuf> {
    find_binary(CHROMIUM_VAR, &["chromium", "chromium-browser"], &[])
        .context("Chromium is not installed (Debian: apt-get install chromium)")
}

/// The chromedriver binary.
fn chromedriver() -> Result<PathBuf> {
    find_binary(
        CHROMEDRIVER_VAR,
        &["chromedriver"],
        &["/usr/lib/chromium/chromedriver"],
    )
    .context("chromedriver is not installed (Debian: apt-get install chromium-driver)")
}

/// `var`'s value, or the first of `names` on `PATH`, or the first of `paths` that exists.
fn find_binary(var: &str, names: &[&str], paths: &[&str]) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .find_map(|name| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .or_else(|| paths.iter().map(PathBuf::from).find(|p| p.is_file()))
        .with_context(|| format!("none of {names:?} on PATH (or set {var})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page that requests another origin and throws: both are seen.
    #[tokio::test]
    async fn a_page_s_requests_and_uncaught_errors_are_seen() {
        let mut browser = Browser::start(800, 600).await.expect("browser");
        browser
            .goto("data:text/html,<p id=p>hi</p><script>fetch('http://127.0.0.1:9/x').catch(()=>{});setTimeout(()=>{throw new Error('boom')},10)</script>")
            .await
            .expect("page");
        let text = browser
            .wait_for(
                "the paragraph is there",
                "return document.getElementById(arguments[0]).textContent",
                json!("p"),
                Duration::from_secs(10),
                |_| Ok(()),
            )
            .await
            .expect("waits");
        assert_eq!(text, "hi");
        let element = browser.find("#p").await.expect("element");
        browser.click(&element).await.expect("click");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let events = loop {
            let events = browser.events().await.expect("events").clone();
            if !events.errors.is_empty() || std::time::Instant::now() > deadline {
                break events;
            }
            tokio::time::sleep(POLL).await;
        };
        assert!(
            events.errors.iter().any(|e| e.contains("boom")),
            "{:?}",
            events.errors
        );
        assert!(
            events.requests.iter().any(|r| r == "http://127.0.0.1:9/x"),
            "{:?}",
            events.requests
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let shot = dir.path().join("page.png");
        browser.screenshot(&shot).await.expect("screenshot");
        let png = std::fs::read(&shot).expect("png");
        assert_eq!(&png[1..4], b"PNG");
        browser.quit().await.expect("quits");
    }
}
