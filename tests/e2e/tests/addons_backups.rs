//! psql and backups of PostgreSQL add-ons end to end (issue 17), with a real standalone
//! paas and real PostgreSQL 15 in paas jobs (root): `pg:psql -c` runs SQL in the add-on;
//! `pg:backups:capture` keeps a `pg_dump -Fc` in the data dir (0600); after rows are changed
//! and a table dropped, `pg:backups:restore` brings them back, into the same add-on and into
//! another app's; a member gets 404 for another member's backups (list, show, restore from
//! her own app); schedules refuse bad times; destroying the add-on removes its dump files.
//! A Redis add-on's `redis:backups:capture` keeps its RDB snapshot the same way, and
//! `redis:backups:restore` brings its keys back after they were changed and flushed
//! (Redis restarts inside the same job; a member gets 404).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use paas_e2e::{addon_stacks_dir, require_root, Paas};
use serde_json::{json, Value};

fn api(paas: &Paas, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let a = paas.call(Some(&paas.token), method, path, body.as_ref());
    (a.status, a.json())
}

/// Creates app `app` with a PostgreSQL add-on and waits until the add-on answers.
fn app_with_database(paas: &Paas, app: &str) -> String {
    app_with_addon(paas, app, "postgresql")
}

/// Creates app `app` with an add-on of `service` and waits until the add-on answers.
fn app_with_addon(paas: &Paas, app: &str, service: &str) -> String {
    let (status, body) = api(paas, "POST", "/v1/apps", Some(json!({ "name": app })));
    assert!(status < 300, "{body}");
    let (status, body) = api(
        paas,
        "POST",
        &format!("/v1/apps/{app}/addons"),
        Some(json!({ "service": service })),
    );
    assert_eq!(status, 201, "{body}");
    let name = body["name"].as_str().unwrap().to_string();
    paas.wait_addon_available(app, &name);
    name
}

/// `paas ARGS…` as the admin: (success, stdout + stderr).
fn cli(paas: &Paas, args: &[&str]) -> (bool, String) {
    let out = paas.cli_as(&paas.token, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The rows of `notes` in `app`'s database, through `pg:psql -c`.
fn notes(paas: &Paas, app: &str) -> String {
    let (ok, out) = cli(
        paas,
        &[
            "pg:psql",
            "-a",
            app,
            "-c",
            "SELECT 'rows=' || coalesce(string_agg(v, ',' ORDER BY v), '') FROM notes",
        ],
    );
    if !ok {
        return format!("failed: {out}");
    }
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with("rows="))
        .unwrap_or("no rows line")
        .to_string()
}

#[test]
fn backups_capture_restore_into_the_same_and_another_addon_and_stay_private() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(addon_stacks_dir());
    let pg = app_with_database(&paas, "shop");

    // pg:psql -c runs SQL in the add-on and returns its rows; the password is not printed.
    let (ok, out) = cli(
        &paas,
        &[
            "pg:psql",
            "-a",
            "shop",
            "-c",
            "CREATE TABLE notes (v TEXT); INSERT INTO notes VALUES ('a'), ('b')",
        ],
    );
    assert!(ok, "{out}\n{}", paas.log());
    assert_eq!(notes(&paas, "shop"), "rows=a,b");
    let (ok, out) = cli(&paas, &["pg:psql", "-a", "shop", "-c", "SELECT nope"]);
    assert!(!ok, "a failing statement fails the command: {out}");
    assert!(out.contains("nope"), "psql's error is shown: {out}");

    // Capture: a completed backup with a size, a 0600 file in the data dir.
    let (ok, out) = cli(&paas, &["pg:backups:capture", "-a", "shop"]);
    assert!(ok && out.contains("completed"), "{out}\n{}", paas.log());
    let (status, list) = api(&paas, "GET", "/v1/apps/shop/pg-backups", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let b = &list[0];
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(
        (b["state"].as_str(), b["addon"].as_str()),
        (Some("completed"), Some(pg.as_str()))
    );
    let size = b["size_bytes"].as_u64().unwrap();
    assert!(size > 0, "{b}");
    let addon_dir = std::fs::read_dir(paas.data.path().join("backups"))
        .unwrap()
        .next()
        .expect("a backups/<addon id> directory")
        .unwrap()
        .path();
    let dump = addon_dir.join(format!("{id}.dump"));
    let meta = std::fs::metadata(&dump).unwrap();
    assert_eq!(meta.len(), size);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        &std::fs::read(&dump).unwrap()[..5],
        b"PGDMP",
        "a pg_dump custom-format archive"
    );
    let (_, listed) = cli(&paas, &["pg:backups", "-a", "shop"]);
    assert!(
        listed.contains(&id) && listed.contains("completed"),
        "{listed}"
    );

    // Change and drop, then restore: the rows are back. Without --confirm nothing happens.
    let (ok, out) = cli(
        &paas,
        &["pg:psql", "-a", "shop", "-c", "UPDATE notes SET v = 'z'"],
    );
    assert!(ok, "{out}");
    assert_eq!(notes(&paas, "shop"), "rows=z,z");
    let (ok, out) = cli(&paas, &["pg:psql", "-a", "shop", "-c", "DROP TABLE notes"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&paas, &["pg:backups:restore", &id, "-a", "shop"]);
    assert!(!ok && out.contains("--confirm shop"), "{out}");
    let (status, body) = api(
        &paas,
        "POST",
        &format!("/v1/apps/shop/pg-backups/{id}/restore"),
        None,
    );
    assert_eq!(status, 400, "the API wants confirm too: {body}");
    let (ok, out) = cli(
        &paas,
        &["pg:backups:restore", &id, "-a", "shop", "--confirm", "shop"],
    );
    assert!(ok, "{out}\n{}", paas.log());
    assert_eq!(notes(&paas, "shop"), "rows=a,b");
    // Restoring over existing rows replaces them (--clean), not adds to them.
    let (ok, out) = cli(
        &paas,
        &["pg:backups:restore", &id, "-a", "shop", "--confirm", "shop"],
    );
    assert!(ok, "{out}");
    assert_eq!(notes(&paas, "shop"), "rows=a,b");

    // Into another app's add-on (another user, another database).
    app_with_database(&paas, "staging");
    let (ok, out) = cli(
        &paas,
        &[
            "pg:backups:restore",
            &id,
            "-a",
            "staging",
            "--confirm",
            "staging",
        ],
    );
    assert!(ok, "{out}\n{}", paas.log());
    assert_eq!(notes(&paas, "staging"), "rows=a,b");

    // A member sees none of it, not even from her own app.
    let eve = paas.add_member("eve");
    let a = paas.call(Some(&eve.token), "GET", "/v1/apps/shop/pg-backups", None);
    assert_eq!(a.status, 404, "{a}");
    let a = paas.call(
        Some(&eve.token),
        "POST",
        "/v1/apps",
        Some(&json!({"name": "evil"})),
    );
    assert!(a.status < 300, "{a}");
    for (method, path) in [
        ("GET", format!("/v1/apps/evil/pg-backups/{id}")),
        ("DELETE", format!("/v1/apps/evil/pg-backups/{id}")),
        (
            "POST",
            format!("/v1/apps/evil/pg-backups/{id}/restore?confirm=evil"),
        ),
    ] {
        let mine = paas.call(Some(&eve.token), method, &path, None);
        let missing = paas.call(
            Some(&eve.token),
            method,
            &path.replace(&id, "b000000000000"),
            None,
        );
        assert_eq!(mine.status, 404, "{method} {path}: {mine}");
        assert_eq!(
            (mine.status, mine.message().replace(&id, "b000000000000")),
            (missing.status, missing.message()),
            "{method} {path}: the same answer as for a missing backup"
        );
    }
    let a = paas.call(Some(&eve.token), "POST", "/v1/apps/shop/pg-backups", None);
    assert_eq!(a.status, 404, "{a}");

    // Schedules: a bad time is a 422 that says what to give; a good one is listed.
    let (ok, out) = cli(
        &paas,
        &["pg:backups:schedule", "-a", "shop", "--at", "25:00"],
    );
    assert!(!ok && out.contains("HH:MM"), "{out}");
    let (ok, out) = cli(
        &paas,
        &[
            "pg:backups:schedule",
            "-a",
            "shop",
            "--at",
            "02:00",
            "--keep",
            "3",
        ],
    );
    assert!(ok && out.contains("02:00"), "{out}");
    let (status, s) = api(&paas, "GET", "/v1/apps/shop/pg-backup-schedules", None);
    assert_eq!(status, 200);
    assert_eq!(
        (s[0]["at"].as_str(), s[0]["keep"].as_u64()),
        (Some("02:00"), Some(3)),
        "{s}"
    );

    // Delete one backup; destroying the add-on removes the rest and the directory.
    let (ok, out) = cli(&paas, &["pg:backups:capture", "-a", "shop"]);
    assert!(ok, "{out}");
    let (_, list) = api(&paas, "GET", "/v1/apps/shop/pg-backups", None);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (ok, out) = cli(&paas, &["pg:backups:delete", &id, "-a", "shop"]);
    assert!(ok, "{out}");
    assert!(!dump.exists(), "the deleted backup's file is gone");
    let (_, list) = api(&paas, "GET", "/v1/apps/shop/pg-backups", None);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (ok, out) = cli(&paas, &["addons:destroy", &pg, "-a", "shop"]);
    assert!(
        !ok && out.contains("backups"),
        "the confirm message names the backups: {out}"
    );
    let (ok, out) = cli(
        &paas,
        &["addons:destroy", &pg, "-a", "shop", "--confirm", "shop"],
    );
    assert!(ok, "{out}");
    assert!(!addon_dir.exists(), "the add-on's dumps are gone");
    let (status, s) = api(&paas, "GET", "/v1/apps/staging/pg-backups", None);
    assert_eq!((status, s), (200, json!([])));
}

#[test]
fn redis_backups_keep_an_rdb_snapshot() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(addon_stacks_dir());
    let redis = app_with_addon(&paas, "cart", "redis");
    let (ok, out) = cli(&paas, &["redis:backups:capture", "-a", "cart"]);
    assert!(ok && out.contains("completed"), "{out}\n{}", paas.log());
    let (status, list) = api(&paas, "GET", "/v1/apps/cart/redis-backups", None);
    assert_eq!(status, 200, "{list}");
    let b = &list[0];
    assert_eq!(b["addon"], redis.as_str());
    let id = b["id"].as_str().unwrap().to_string();
    let dir = std::fs::read_dir(paas.data.path().join("backups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = dir.join(format!("{id}.dump"));
    let data = std::fs::read(&file).unwrap();
    assert_eq!(data.len() as u64, b["size_bytes"].as_u64().unwrap());
    assert_eq!(&data[..5], b"REDIS", "an RDB file");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Not a PostgreSQL backup: pg:backups does not list it, nor restore it.
    let (_, pg) = api(&paas, "GET", "/v1/apps/cart/pg-backups", None);
    assert_eq!(pg, json!([]));
    let eve = paas.add_member("eve");
    let a = paas.call(Some(&eve.token), "GET", "/v1/apps/cart/redis-backups", None);
    assert_eq!(a.status, 404, "{a}");
    let (ok, out) = cli(&paas, &["redis:backups:delete", &id, "-a", "cart"]);
    assert!(ok, "{out}");
    assert!(!file.exists());
}

/// A minimal Redis client (RESP) for the test, straight from the host to the add-on's
/// address in its job (the host is not walled off; the password still is asked).
struct Resp {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Resp {
    /// Connects to `redis://default:PASSWORD@HOST:PORT` and authenticates.
    fn connect(url: &str) -> Resp {
        let rest = url.strip_prefix("redis://default:").expect(url);
        let (password, addr) = rest.rsplit_once('@').expect(url);
        let w = std::net::TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Resp {
            r: std::io::BufReader::new(w.try_clone().unwrap()),
            w,
        };
        assert_eq!(c.cmd(&["AUTH", password]), "OK");
        c
    }

    /// Sends one command and reads its reply: a simple or bulk string, an integer as
    /// text, `(nil)`, or `ERR …`.
    fn cmd(&mut self, args: &[&str]) -> String {
        use std::io::{BufRead, Read, Write};
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.w.write_all(out.as_bytes()).unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        match line.split_at(1) {
            ("+", s) | (":", s) => s.to_string(),
            ("-", e) => format!("ERR {e}"),
            ("$", "-1") => "(nil)".into(),
            ("$", n) => {
                let mut buf = vec![0u8; n.parse::<usize>().unwrap() + 2];
                self.r.read_exact(&mut buf).unwrap();
                String::from_utf8_lossy(&buf[..buf.len() - 2]).into_owned()
            }
            _ => panic!("an unexpected reply: {line}"),
        }
    }
}

/// The app's `REDIS_URL`, once the add-on has set it.
fn redis_url(paas: &Paas, app: &str) -> String {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, config) = api(paas, "GET", &format!("/v1/apps/{app}/config"), None);
        if let Some(url) = config["REDIS_URL"].as_str() {
            return url.to_string();
        }
        assert!(Instant::now() < end, "no REDIS_URL on {app}: {config}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn redis_restore_brings_the_snapshots_keys_back() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(addon_stacks_dir());
    app_with_addon(&paas, "cart", "redis");
    let url = redis_url(&paas, "cart");
    let mut r = Resp::connect(&url);
    assert_eq!(r.cmd(&["SET", "fruit", "apple"]), "OK");
    assert_eq!(r.cmd(&["SET", "veg", "leek"]), "OK");
    let (ok, out) = cli(&paas, &["redis:backups:capture", "-a", "cart"]);
    assert!(ok && out.contains("completed"), "{out}\n{}", paas.log());
    assert!(
        out.contains("redis:backups:restore"),
        "says how to restore: {out}"
    );
    let (_, list) = api(&paas, "GET", "/v1/apps/cart/redis-backups", None);
    let id = list[0]["id"].as_str().unwrap().to_string();

    // Changed, then flushed, after the snapshot.
    assert_eq!(r.cmd(&["SET", "fruit", "pear"]), "OK");
    assert_eq!(r.cmd(&["SET", "later", "x"]), "OK");
    assert_eq!(r.cmd(&["FLUSHALL"]), "OK");
    assert_eq!(r.cmd(&["SET", "later", "y"]), "OK");
    drop(r);

    // Without --confirm nothing happens (CLI and API).
    let (ok, out) = cli(&paas, &["redis:backups:restore", &id, "-a", "cart"]);
    assert!(!ok && out.contains("--confirm cart"), "{out}");
    let (status, body) = api(
        &paas,
        "POST",
        &format!("/v1/apps/cart/redis-backups/{id}/restore"),
        None,
    );
    assert_eq!(status, 400, "{body}");

    // A member gets the answer a missing backup gets, from her own app too.
    let eve = paas.add_member("eve");
    let a = paas.call(
        Some(&eve.token),
        "POST",
        &format!("/v1/apps/cart/redis-backups/{id}/restore?confirm=cart"),
        None,
    );
    assert_eq!(a.status, 404, "{a}");
    let a = paas.call(
        Some(&eve.token),
        "POST",
        "/v1/apps",
        Some(&json!({"name": "evil"})),
    );
    assert!(a.status < 300, "{a}");
    let path = format!("/v1/apps/evil/redis-backups/{id}/restore?confirm=evil");
    let mine = paas.call(Some(&eve.token), "POST", &path, None);
    let missing = paas.call(
        Some(&eve.token),
        "POST",
        &path.replace(&id, "b000000000000"),
        None,
    );
    assert_eq!(mine.status, 404, "{mine}");
    assert_eq!(
        (mine.status, mine.message().replace(&id, "b000000000000")),
        (missing.status, missing.message())
    );

    // The restore: the snapshot's keys and nothing else; the add-on keeps its address and
    // logs AOF again (rewritten from the restored data, so a restart loads the same).
    let (ok, out) = cli(
        &paas,
        &[
            "redis:backups:restore",
            &id,
            "-a",
            "cart",
            "--confirm",
            "cart",
        ],
    );
    assert!(ok, "{out}\n{}", paas.log());
    assert_eq!(
        redis_url(&paas, "cart"),
        url,
        "the same job, the same address"
    );
    let mut r = Resp::connect(&url);
    assert_eq!(r.cmd(&["GET", "fruit"]), "apple");
    assert_eq!(r.cmd(&["GET", "veg"]), "leek");
    assert_eq!(r.cmd(&["GET", "later"]), "(nil)");
    let info = r.cmd(&["INFO", "persistence"]);
    assert!(info.contains("aof_enabled:1"), "{info}");
    // The add-on loop may have seen Redis away for a moment (`starting`): it comes back
    // to `available` within a pass or two, and no crash was counted.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, a) = api(&paas, "GET", "/v1/apps/cart/addons", None);
        assert_eq!(a[0]["restarts"], 0, "Redis restarted inside its job: {a}");
        if a[0]["state"] == "available" {
            break;
        }
        assert!(Instant::now() < end, "not available again: {a}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Again over the restored data (the loop in the job restarts Redis a second time).
    assert_eq!(r.cmd(&["SET", "fruit", "plum"]), "OK");
    drop(r);
    let (ok, out) = cli(
        &paas,
        &[
            "redis:backups:restore",
            &id,
            "-a",
            "cart",
            "--confirm",
            "cart",
        ],
    );
    assert!(ok, "{out}\n{}", paas.log());
    let mut r = Resp::connect(&url);
    assert_eq!(r.cmd(&["GET", "fruit"]), "apple");
}
