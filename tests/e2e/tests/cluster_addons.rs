//! An add-on used from another node (issue 17), on a 2-host cluster made by
//! `deploy/netns-cluster` with the real service images: a PostgreSQL add-on placed on host 1
//! is used by a Python app whose web job is pinned to host 2 (a volume there); the app
//! writes rows and reads them back through `DATABASE_URL` (host 1's advertised address and
//! the job's host port) and answers through the router. A job of another app on host 2
//! cannot connect to that address until its app is attached too, and a user's process (not
//! root) in host 2's own network namespace cannot either, though it reaches the controller.

use std::process::Command;
use std::time::Duration;

use paas_e2e::netns::{wait, Layout, NetnsCluster};
use paas_e2e::{addon_stacks_dir, require_root, AppDir};
use serde_json::{json, Value};

/// `/` and `/write/V`: the rows through DATABASE_URL; `/probe/HOST/PORT`: a TCP connect
/// from this job (3 s at most): `CONNECTED` or `REFUSED <why>`. The nodes of the test
/// cluster reach no package index, so the app speaks PostgreSQL's protocol (SCRAM-SHA-256,
/// simple queries) with the standard library alone.
const APP: &str = r#"import base64, hashlib, hmac, os, socket, struct, urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer


class Pg:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.s = socket.create_connection((u.hostname, u.port), 5)
        params = b"user\0" + u.username.encode() + b"\0database\0" + u.path[1:].encode() + b"\0\0"
        self.s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        nonce = base64.b64encode(os.urandom(18)).decode()
        bare = "n=,r=" + nonce
        while True:
            t, body = self.read()
            if t == b"R":
                code = struct.unpack("!i", body[:4])[0]
                if code == 10:
                    first = ("n,," + bare).encode()
                    self.send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
                elif code == 11:
                    server_first = body[4:].decode()
                    f = dict(x.split("=", 1) for x in server_first.split(","))
                    salted = hashlib.pbkdf2_hmac("sha256", urllib.parse.unquote(u.password).encode(),
                                                 base64.b64decode(f["s"]), int(f["i"]))
                    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
                    stored = hashlib.sha256(client_key).digest()
                    without_proof = "c=biws,r=" + f["r"]
                    auth = ",".join([bare, server_first, without_proof]).encode()
                    sig = hmac.new(stored, auth, "sha256").digest()
                    proof = bytes(a ^ b for a, b in zip(client_key, sig))
                    self.send(b"p", (without_proof + ",p=" + base64.b64encode(proof).decode()).encode())
            elif t == b"Z":
                return

    def send(self, t, body):
        self.s.sendall(t + struct.pack("!i", len(body) + 4) + body)

    def recv(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise OSError("connection closed")
            b += c
        return b

    def read(self):
        t = self.recv(1)
        body = self.recv(struct.unpack("!i", self.recv(4))[0] - 4)
        if t == b"E":
            fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
            raise RuntimeError(fields.get(b"M", b"?").decode())
        return t, body

    def query(self, sql):
        self.send(b"Q", sql.encode() + b"\0")
        rows = []
        while True:
            t, body = self.read()
            if t == b"D":
                n, at, row = struct.unpack("!h", body[:2])[0], 2, []
                for _ in range(n):
                    size = struct.unpack("!i", body[at:at + 4])[0]
                    row.append(body[at + 4:at + 4 + size].decode())
                    at += 4 + max(size, 0)
                rows.append(row)
            elif t == b"Z":
                return rows


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200
        try:
            if self.path.startswith("/probe/"):
                host, port = self.path.split("/")[2:4]
                try:
                    socket.create_connection((host, int(port)), 3).close()
                    body = "CONNECTED"
                except OSError as e:
                    body = "REFUSED " + str(e)
            elif "DATABASE_URL" not in os.environ:
                body = "no-database"
            else:
                c = Pg(os.environ["DATABASE_URL"])
                c.query("CREATE TABLE IF NOT EXISTS notes (v TEXT)")
                if self.path.startswith("/write/"):
                    c.query("INSERT INTO notes VALUES ('%s')" % self.path[7:].replace("'", "''"))
                rows = [r[0] for r in c.query("SELECT v FROM notes ORDER BY v")]
                c.s.close()
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

/// `METHOD path` on the controller's API as admin: the status and JSON body.
fn call(c: &NetnsCluster, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = c
        .client()
        .request(m, format!("{}{path}", c.api))
        .bearer_auth(&c.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let Ok(resp) = req.send() else {
        return (0, Value::Null);
    };
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// What `<app>.localhost` answers at `path` through the router ("" for no answer).
fn get(c: &NetnsCluster, app: &str, path: &str) -> String {
    c.client()
        .get(format!("http://{}{path}", c.router))
        .header("host", format!("{app}.localhost"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

/// Waits until `<app>.localhost` answers `path` with a body containing `needle`.
fn wait_for(c: &NetnsCluster, app: &str, path: &str, needle: &str, secs: u64) -> String {
    let mut last = String::new();
    let what = format!("{app}{path} answering {needle:?}");
    wait(&what, Duration::from_secs(secs), || {
        last = get(c, app, path);
        last.contains(needle).then(|| last.clone())
    })
}

/// Pushes the probe app as `name`, then pins its web type to host 2 with a volume there.
fn deploy_on_host2(c: &NetnsCluster, name: &str) {
    let app = AppDir::new();
    app.write("requirements.txt", "");
    app.write("app.py", APP);
    app.write("Procfile", "web: python3 app.py\n");
    app.commit("probe app");
    let url = format!(
        "http://x:{}@{}/git/{name}.git",
        c.token,
        c.api.trim_start_matches("http://")
    );
    let push = app.push(&url, "main");
    assert!(push.ok, "push of {name} failed:\n{}", push.output);
    let host2 = format!("{}h2", c.prefix);
    let (s, v) = call(
        c,
        "POST",
        &format!("/v1/apps/{name}/volumes"),
        Some(json!({"name": "pin", "size": "16M", "node": host2})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        c,
        "PUT",
        &format!("/v1/apps/{name}/volumes/pin/mount"),
        Some(json!({"type": "web", "path": "/pin"})),
    );
    assert_eq!(s, 200, "{v}");
    wait(
        &format!("{name}'s web on host 2 only"),
        Duration::from_secs(180),
        || (c.up_jobs_per_host(name) == [0, 1]).then_some(()),
    );
}

/// Runs `sh -c SCRIPT` in host `i`'s network namespace as `nobody` (not root): its
/// success and output.
fn as_user_on_host(c: &NetnsCluster, i: usize, script: &str) -> (bool, String) {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}-h{i}", c.prefix))
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "timeout",
            "5",
            "bash",
            "-c",
            script,
        ])
        .output()
        .expect("run nsenter");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn an_app_on_host_2_uses_its_database_on_host_1_and_nothing_else_reaches_it() {
    if !require_root() {
        return;
    }
    let c = NetnsCluster::up_with_stacks(
        Layout {
            // Not the tags and nets of the other cluster journeys.
            tag: 'a',
            name: "addons",
            octet: 243,
            cluster_cidr: Some("10.219.0.0/16"),
            hosts: 2,
        },
        addon_stacks_dir(),
    );
    deploy_on_host2(&c, "shop");
    wait_for(&c, "shop", "/", "no-database", 60);

    // The add-on goes to the emptier node: host 1 (host 2 runs shop's web).
    let (s, v) = call(
        &c,
        "POST",
        "/v1/apps/shop/addons",
        Some(json!({"service": "postgresql"})),
    );
    assert_eq!(s, 201, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    let addon = wait("the add-on available", Duration::from_secs(240), || {
        let (_, list) = call(&c, "GET", "/v1/apps/shop/addons", None);
        list.as_array()?
            .iter()
            .find(|a| a["name"] == name.as_str() && a["state"] == "available")
            .cloned()
    });
    assert_eq!(addon["node"], format!("{}h1", c.prefix), "{addon}");

    // The URL names host 1's advertised address and the job's host port.
    let (_, config) = call(&c, "GET", "/v1/apps/shop/config", None);
    let url = config["DATABASE_URL"].as_str().expect("DATABASE_URL set");
    let addr = url.rsplit_once('@').unwrap().1.split('/').next().unwrap();
    let (host, port) = addr.split_once(':').unwrap();
    assert_eq!(host, format!("{}.11", c.net), "{addr}");

    // shop's web, still on host 2 only, writes rows on host 1 and reads them back.
    wait_for(&c, "shop", "/write/a", "rows:a", 180);
    let rows = wait_for(&c, "shop", "/write/b", "rows:", 30);
    assert_eq!(rows, "rows:a,b");
    assert_eq!(c.up_jobs_per_host("shop"), [0, 1], "shop moved off host 2");
    let (_, jobs) = call(&c, "GET", "/v1/apps/shop/jobs", None);
    let webs: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["type"] == "web" && j["state"] == "up")
        .collect();
    assert!(
        !webs.is_empty() && webs.iter().all(|j| j["node"] == format!("{}h2", c.prefix)),
        "{jobs}"
    );
    let probe = format!("/probe/{host}/{port}");
    assert_eq!(get(&c, "shop", &probe), "CONNECTED");

    // Another app's job on host 2: refused (its node's wall); the same job connects once
    // its app is attached (below).
    deploy_on_host2(&c, "other");
    wait_for(&c, "other", "/", "no-database", 60);
    let api = c.api.trim_start_matches("http://").replace(':', "/");
    let out = get(&c, "other", &probe);
    assert!(
        out.starts_with("REFUSED"),
        "other's job reached {addr}: {out}"
    );

    // A user's process in host 2's own namespace (not a job, not root): refused as well,
    // though it reaches the controller's API.
    let (ok, out) = as_user_on_host(&c, 2, &format!("exec 3<>/dev/tcp/{}", api));
    assert!(ok, "nobody on host 2 cannot reach the API at all: {out}");
    let (ok, out) = as_user_on_host(
        &c,
        2,
        &format!("exec 3<>/dev/tcp/{host}/{port} && echo CONNECTED"),
    );
    assert!(
        !ok && !out.contains("CONNECTED"),
        "a user on host 2 reached {addr}: {out}"
    );

    // Attaching the add-on to `other` opens the way for its jobs (a new element on host
    // 2); the rows are shop's.
    let (s, v) = call(
        &c,
        "POST",
        "/v1/apps/other/addon-attachments",
        Some(json!({"addon": name})),
    );
    assert!(s < 300, "{s} {v}");
    let rows = wait_for(&c, "other", "/", "rows:", 180);
    assert_eq!(rows, "rows:a,b");
    assert_eq!(
        c.up_jobs_per_host("other"),
        [0, 1],
        "other moved off host 2"
    );
    wait_for(&c, "shop", "/", "rows:a,b", 120);
}
