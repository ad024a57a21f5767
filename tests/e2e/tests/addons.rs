//! Add-ons end to end (issue 17), with a real standalone paas, real git pushes and real
//! PostgreSQL 15 and Redis 7 in paas jobs from the service images (root): a Python app
//! (pg8000) keeps its rows across a restart of the app, of the add-on and of the agent and a
//! redeploy; a
//! Node app (the `redis` package) keeps its keys across a crash of its Redis, a restart and
//! a redeploy; another
//! app's job cannot connect, wrong credentials are refused, a member cannot see or attach
//! another member's add-on (404), bad services and plans are 422s that list the good ones,
//! and a destroy unsets the URL and removes the job.

use std::time::{Duration, Instant};

use paas_e2e::{addon_stacks_dir, require_root, AppDir, Paas};
use serde_json::{json, Value};

const PY_APP: &str = r#"import os, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
import pg8000.native


def connect(password=None):
    u = urllib.parse.urlparse(os.environ["DATABASE_URL"])
    return pg8000.native.Connection(
        u.username, host=u.hostname, port=u.port, database=u.path[1:],
        password=password or u.password, timeout=5)


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200
        try:
            if "DATABASE_URL" not in os.environ:
                body = "no-database"
            elif self.path == "/wrong":
                try:
                    connect("not-the-password").close()
                    body = "wrong-password-accepted"
                except Exception as e:
                    body = "refused:" + str(e)
            else:
                c = connect()
                c.run("CREATE TABLE IF NOT EXISTS notes (v TEXT)")
                if self.path.startswith("/write/"):
                    c.run("INSERT INTO notes VALUES (:v)", v=self.path[7:])
                rows = [r[0] for r in c.run("SELECT v FROM notes ORDER BY v")]
                c.close()
                body = "rows:" + ",".join(rows)
        except Exception as e:
            code, body = 500, "error:" + repr(e)
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

const NODE_APP: &str = r#"const http = require('http');
const { createClient } = require('redis');
http.createServer(async (req, res) => {
  if (!process.env.REDIS_URL) { res.end('no-redis'); return; }
  const c = createClient({ url: process.env.REDIS_URL, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  c.on('error', () => {});
  try {
    await c.connect();
    if (req.url.startsWith('/set/')) await c.rPush('items', req.url.slice(5));
    const items = await c.lRange('items', 0, -1);
    res.end('items:' + items.join(','));
  } catch (e) {
    res.statusCode = 500; res.end('error:' + e.message);
  } finally {
    c.quit().catch(() => {});
  }
}).listen(process.env.PORT);
"#;

fn api(paas: &Paas, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a = paas.call(Some(&paas.token), method, path, body.as_ref());
    (a.status, a.json())
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// Waits until the app answers `path` with 200 and a body containing `needle`; panics
/// with the last answer and the controller's log otherwise.
fn wait_app(paas: &Paas, app: &str, path: &str, needle: &str, limit: Duration) -> String {
    let mut last = String::new();
    let ok = eventually(limit, || match paas.request_app(app, path) {
        Ok((200, body)) if body.contains(needle) => {
            last = body;
            true
        }
        Ok((code, body)) => {
            last = format!("{code} {body}");
            false
        }
        Err(e) => {
            last = e.to_string();
            false
        }
    });
    assert!(
        ok,
        "{app}{path} never answered {needle:?}; last: {last}\n{}",
        paas.log()
    );
    last
}

fn push(paas: &Paas, app: &AppDir, name: &str) {
    let p = app.push(&paas.git_url(name), "main");
    assert!(p.ok, "push of {name} failed:\n{}", p.output);
}

fn addon_of(paas: &Paas, app: &str) -> Value {
    let (status, list) = api(paas, "GET", &format!("/v1/apps/{app}/addons"), None);
    assert_eq!(status, 200, "{list}");
    list[0].clone()
}

fn wait_available(paas: &Paas, app: &str) -> Value {
    let name = addon_of(paas, app)["name"].as_str().unwrap().to_string();
    paas.wait_addon_available(app, &name)
}

/// The agent's job of add-on `name` (up).
fn addon_job(paas: &Paas, name: &str) -> Option<Value> {
    paas.agent_jobs()
        .unwrap_or_default()
        .into_iter()
        .find(|j| j["labels"]["paas.addon"] == name && j["state"] == "up")
}

/// Kills the add-on's process (SIGKILL, as a crash) and waits for a new job to replace it.
fn crash_addon(paas: &Paas, name: &str) {
    let job = addon_job(paas, name).expect("the add-on's job runs");
    let pid = job["pid"].as_i64().expect("a pid") as i32;
    // SAFETY: kill(2) on a pid the agent reported for a job this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let old = job["id"].clone();
    let ok = eventually(Duration::from_secs(120), || {
        addon_job(paas, name).is_some_and(|j| j["id"] != old)
    });
    assert!(
        ok,
        "the crashed add-on {name} was not started again\n{}",
        paas.log()
    );
}

/// Runs `command` as a one-off job of `app` and returns its output.
fn run(paas: &Paas, app: &str, command: &str) -> String {
    let (status, started) = api(
        paas,
        "POST",
        &format!("/v1/apps/{app}/run"),
        Some(json!({ "command": command })),
    );
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let out = paas.call(
        Some(&paas.token),
        "GET",
        &format!("/v1/apps/{app}/run/{id}/output"),
        None,
    );
    api(paas, "DELETE", &format!("/v1/apps/{app}/run/{id}"), None);
    out.body
}

#[test]
fn apps_keep_their_data_in_postgresql_and_redis_addons_that_only_they_reach() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(addon_stacks_dir());

    // A Python app on PostgreSQL.
    let py = AppDir::new();
    py.write("requirements.txt", "pg8000==1.31.2\n");
    py.write("app.py", PY_APP);
    py.write("Procfile", "web: python3 app.py\n");
    py.commit("py");
    push(&paas, &py, "shop");
    wait_app(&paas, "shop", "/", "no-database", Duration::from_secs(60));

    // Bad input first: 422s that list what there is.
    let (status, body) = api(
        &paas,
        "POST",
        "/v1/apps/shop/addons",
        Some(json!({"service": "mysql"})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unknown_addon_service");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("postgresql, redis"),
        "{body}"
    );
    let (status, body) = api(
        &paas,
        "POST",
        "/v1/apps/shop/addons",
        Some(json!({"service": "postgresql", "plan": "huge"})),
    );
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (422, json!("unknown_addon_plan"))
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("mini"),
        "{body}"
    );

    // The CLI creates it and waits for it.
    // The first add-on pulls and unpacks the service image (~250 MB): minutes on a
    // loaded machine; the CLI's own wait is 300 s.
    let out = paas.cli_within(
        &paas.token,
        &["addons:create", "postgresql", "-a", "shop", "--wait"],
        Duration::from_secs(330),
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("it is available and DATABASE_URL is set"),
        "{out:?}\n{}",
        paas.log()
    );
    let pg = wait_available(&paas, "shop");
    let pg_name = pg["name"].as_str().unwrap().to_string();
    assert_eq!(pg["config_var"], "DATABASE_URL");
    assert_eq!(pg["plan"], "mini");
    let listed = paas.cli_as(&paas.token, &["addons", "-a", "shop"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains(&pg_name) && listed.contains("available"),
        "{listed}"
    );

    // Rows written through the app stay across restarts of the app, the add-on and the agent.
    wait_app(&paas, "shop", "/write/a", "rows:a", Duration::from_secs(90));
    let (status, body) = api(&paas, "POST", "/v1/apps/shop/restart", None);
    assert!(status < 300, "{body}");
    wait_app(
        &paas,
        "shop",
        "/write/b",
        "rows:a,b",
        Duration::from_secs(90),
    );
    crash_addon(&paas, &pg_name);
    wait_available(&paas, "shop");
    wait_app(
        &paas,
        "shop",
        "/write/c",
        "rows:a,b,c",
        Duration::from_secs(120),
    );
    let agent = paas.agent_pid().expect("the agent wrote agent.pid");
    // SAFETY: kill(2) on the agent this test's paas started.
    unsafe {
        libc::kill(agent, libc::SIGKILL);
    }
    assert!(
        eventually(Duration::from_secs(60), || paas
            .agent_pid()
            .is_some_and(|p| p != agent && paas.agent_processes() == vec![p])),
        "the agent was not started again\n{}",
        paas.log()
    );
    wait_app(&paas, "shop", "/", "rows:a,b,c", Duration::from_secs(120));
    // A redeploy (a new push, a new release) finds the same rows: the data is the add-on's.
    let (_, before) = api(&paas, "GET", "/v1/apps/shop", None);
    py.write("REVISION", "2\n");
    py.commit("redeploy");
    push(&paas, &py, "shop");
    let (_, after) = api(&paas, "GET", "/v1/apps/shop", None);
    assert!(
        after["current_release"].as_u64() > before["current_release"].as_u64(),
        "the push made no new release: {before} → {after}"
    );
    wait_app(&paas, "shop", "/", "rows:a,b,c", Duration::from_secs(120));
    // The credentials are the add-on's own: a wrong password is refused by PostgreSQL.
    let wrong = wait_app(&paas, "shop", "/wrong", "refused:", Duration::from_secs(30));
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    // The logs of the add-on are the app's, under --ps addon.
    let logs = paas.call(
        Some(&paas.token),
        "GET",
        "/v1/apps/shop/logs?ps=addon&lines=200",
        None,
    );
    assert!(
        logs.body.contains("database system is ready"),
        "{}",
        logs.body
    );

    // Another app's job cannot reach the database; the app's own job can.
    let addr = {
        let (_, config) = api(&paas, "GET", "/v1/apps/shop/config", None);
        let url = config["DATABASE_URL"].as_str().unwrap().to_string();
        let password = url.split_once("://").unwrap().1.split('@').next().unwrap();
        let password = password.split_once(':').unwrap().1;
        assert!(password.len() >= 32, "{url}");
        assert!(
            !paas.log().contains(password),
            "the add-on's password was logged"
        );
        url.rsplit_once('@')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let (host, port) = addr.split_once(':').unwrap();
    let other = AppDir::new();
    other.write("requirements.txt", "");
    other.write("Procfile", "web: python3 -m http.server $PORT\n");
    other.commit("other");
    push(&paas, &other, "other");
    let probe = format!(
        "python3 -c \"import socket\ntry:\n socket.create_connection(('{host}', {port}), 3); print('CONNECTED')\nexcept OSError as e:\n print('REFUSED', e)\""
    );
    let out = run(&paas, "other", &probe);
    assert!(
        out.contains("REFUSED") && !out.contains("CONNECTED"),
        "{out}"
    );
    // The same probe from the app's own job connects (so the one above can fail).
    let out = run(&paas, "shop", &probe);
    assert!(
        out.contains("CONNECTED"),
        "the app's own job must connect: {out}"
    );

    // A member sees none of it.
    let eve = paas.add_member("eve");
    let a = paas.call(Some(&eve.token), "GET", "/v1/apps/shop/addons", None);
    assert_eq!(a.status, 404, "{a}");
    let a = paas.call(
        Some(&eve.token),
        "POST",
        "/v1/apps",
        Some(&json!({"name": "evil"})),
    );
    assert!(a.status < 300, "{a}");
    let a = paas.call(
        Some(&eve.token),
        "POST",
        "/v1/apps/evil/addon-attachments",
        Some(&json!({"addon": pg_name})),
    );
    assert_eq!(a.status, 404, "{a}");
    let missing = paas.call(
        Some(&eve.token),
        "POST",
        "/v1/apps/evil/addon-attachments",
        Some(&json!({"addon": "postgresql-nobody-0000"})),
    );
    assert_eq!(
        (missing.status, missing.message()),
        (
            a.status,
            a.message().replace(&pg_name, "postgresql-nobody-0000")
        )
    );
    let a = paas.call(
        Some(&eve.token),
        "DELETE",
        &format!("/v1/apps/shop/addons/{pg_name}?confirm=shop"),
        None,
    );
    assert_eq!(a.status, 404, "{a}");

    // A Node app on Redis keeps its keys across a crash of its Redis.
    let node = AppDir::new();
    node.write(
        "package.json",
        r#"{"name":"cart","version":"1.0.0","private":true,"scripts":{"start":"node server.js"},"dependencies":{"redis":"4.7.0"}}
"#,
    );
    node.write("server.js", NODE_APP);
    node.commit("node");
    push(&paas, &node, "cart");
    let (status, body) = api(
        &paas,
        "POST",
        "/v1/apps/cart/addons",
        Some(json!({"service": "redis"})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["config_var"], "REDIS_URL");
    let redis = wait_available(&paas, "cart");
    let redis_name = redis["name"].as_str().unwrap().to_string();
    wait_app(&paas, "cart", "/set/x", "items:x", Duration::from_secs(120));
    wait_app(
        &paas,
        "cart",
        "/set/y",
        "items:x,y",
        Duration::from_secs(30),
    );
    crash_addon(&paas, &redis_name);
    wait_available(&paas, "cart");
    wait_app(&paas, "cart", "/", "items:x,y", Duration::from_secs(120));
    // …and across a restart and a redeploy of the Node app itself.
    let (status, body) = api(&paas, "POST", "/v1/apps/cart/restart", None);
    assert!(status < 300, "{body}");
    wait_app(
        &paas,
        "cart",
        "/set/z",
        "items:x,y,z",
        Duration::from_secs(90),
    );
    let (_, before) = api(&paas, "GET", "/v1/apps/cart", None);
    node.write("REVISION", "2\n");
    node.commit("redeploy");
    push(&paas, &node, "cart");
    let (_, after) = api(&paas, "GET", "/v1/apps/cart", None);
    assert!(
        after["current_release"].as_u64() > before["current_release"].as_u64(),
        "the push made no new release: {before} → {after}"
    );
    wait_app(&paas, "cart", "/", "items:x,y,z", Duration::from_secs(120));

    // Destroying needs the confirmation, then unsets the URL and stops the job.
    let (status, body) = api(
        &paas,
        "DELETE",
        &format!("/v1/apps/shop/addons/{pg_name}"),
        None,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = api(
        &paas,
        "DELETE",
        &format!("/v1/apps/shop/addons/{pg_name}?confirm=shop"),
        None,
    );
    assert_eq!(status, 204, "{body}");
    let (_, config) = api(&paas, "GET", "/v1/apps/shop/config", None);
    assert!(config.get("DATABASE_URL").is_none(), "{config}");
    assert!(
        eventually(Duration::from_secs(30), || addon_job(&paas, &pg_name)
            .is_none()),
        "the destroyed add-on's job still runs"
    );
    wait_app(&paas, "shop", "/", "no-database", Duration::from_secs(90));
}
