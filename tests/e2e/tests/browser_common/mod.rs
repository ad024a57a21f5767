//! What the browser journeys share (`dashboard.rs`, `dashboard_addons.rs`): a headless
//! Chromium driven through `chromedriver` with fantoccini (skipped without them, except
//! under `CI=true`, where it fails), screenshots, form helpers, and waits on the page.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use paas_e2e::{workspace_root, Paas};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// True when the browser can run; false (skip) when it is missing outside CI.
pub fn require_browser() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "the dashboard test needs {CHROMIUM} and {CHROMEDRIVER} and CI=true: \
             install them with deploy/install-deps (Debian: apt-get install chromium chromium-driver)"
        );
    }
    eprintln!("skipping: chromium or chromedriver is not installed");
    false
}

/// A running chromedriver, stopped on drop.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn screenshots_dir() -> PathBuf {
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("open a chromium session through chromedriver")
}

pub async fn shot(b: &Client, name: &str) {
    let png = b.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

pub async fn text(b: &Client, css: &str) -> String {
    match b.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

pub async fn fill(b: &Client, css: &str, value: &str) {
    let e = b.find(Locator::Css(css)).await.expect(css);
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

pub async fn click(b: &Client, css: &str) {
    b.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Clicks a submit button and waits until the next page has replaced this one.
pub async fn submit(b: &Client, css: &str) {
    let old = b.find(Locator::Css("html")).await.unwrap();
    click(b, css).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while old.tag_name().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "clicking {css} did not load a page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while b
        .execute("return document.readyState", vec![])
        .await
        .unwrap()
        != "complete"
    {
        assert!(
            Instant::now() < deadline,
            "the page after {css} did not finish loading"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the browser is at `path` (after a click that submits a form).
pub async fn at(b: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = b.current_url().await.unwrap();
        if now.path() == path
            && b.execute("return document.readyState", vec![])
                .await
                .unwrap()
                == "complete"
        {
            return;
        }
        if Instant::now() > deadline {
            panic!("the browser is at {now}, not {path}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reloads `url` until `check(page source)` holds; panics with the last source otherwise.
pub async fn eventually(
    b: &Client,
    url: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        b.goto(url).await.unwrap();
        let src = b.source().await.unwrap();
        if check(&src) {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what} did not happen within {timeout:?}; the page was:\n{src}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn count(src: &str, needle: &str) -> usize {
    src.matches(needle).count()
}

/// The ids of the page's web jobs that are up.
pub async fn up_web_jobs(b: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for row in b
        .find_all(Locator::Css("tr.job[data-type=web][data-state=up]"))
        .await
        .unwrap()
    {
        if let Some(id) = row.attr("data-job").await.unwrap() {
            ids.push(id);
        }
    }
    ids
}

/// True once a chart on the page has drawn a data line: pixels in the first series colour
/// (blue), which neither the title text nor the axis uses.
pub const CHART_DRAWN: &str = r#"
var cs = document.querySelectorAll('#charts canvas');
for (var n = 0; n < cs.length; n++) {
  var c = cs[n];
  if (!c.width || !c.height) continue;
  var d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (var i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && d[i + 2] - d[i] > 80 && d[i + 2] - d[i + 1] > 60) return true;
  }
}
return false;
"#;

/// POSTs JSON to the API with the admin token; panics unless it succeeds.
pub fn api_post(p: &Paas, path: &str, body: serde_json::Value) {
    let resp = p
        .client()
        .post(format!("{}{path}", p.api))
        .bearer_auth(&p.token)
        .json(&body)
        .send()
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "POST {path}: {status}: {}",
        resp.text().unwrap_or_default()
    );
}
