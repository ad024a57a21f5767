//! A throwaway PostgreSQL server for tests (store tests, the leader failover test): one per
//! test process, started on first use as the `postgres` user (via `runuser` when we are
//! root) in a private directory under /tmp, listening only on a Unix socket there (no TCP
//! port, so parallel test processes never clash). Each test gets a database of its own,
//! dropped when its [`PgDb`] goes out of scope.
//!
//! The server is a child of a small shell that reads its stdin: when the test process ends
//! (however it ends) that pipe closes, and the shell stops the server and deletes its
//! directory.
//!
//! Without PostgreSQL installed, [`database`] returns None (the caller skips with a message)
//! — unless `CI=true`, where it panics: CI must run the PostgreSQL tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running server of this process.
#[derive(Debug)]
pub struct PgCluster {
    /// The directory holding the data dir and the socket.
    pub dir: PathBuf,
    bin: PathBuf,
    /// Kept so its stdin (the server's lifeline) stays open while the process lives.
    _keeper: Mutex<Child>,
}

/// One database of the test cluster; dropped (with its connections) on drop.
#[derive(Debug)]
pub struct PgDb {
    pub name: String,
    /// `postgres://postgres@localhost/<name>?host=<socket dir>&port=5432`
    pub url: String,
    cluster: &'static PgCluster,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = self.cluster.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

const PORT: u16 = 5432;

static CLUSTER: OnceLock<Result<PgCluster, String>> = OnceLock::new();

/// A fresh, empty database; None (after saying why on stderr) when PostgreSQL is not
/// available and CI is not set. Panics when `CI=true` and PostgreSQL cannot be started.
pub fn database() -> Option<PgDb> {
    let cluster = CLUSTER.get_or_init(start);
    let cluster = match cluster {
        Ok(c) => c,
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but PostgreSQL could not be started for the tests: {why}");
            }
            eprintln!("skipping a PostgreSQL test: {why}");
            return None;
        }
    };
    let name = format!("t_{}", crate::util::random_hex(8));
    if let Err(e) = cluster.psql(&format!("CREATE DATABASE {name}")) {
        panic!("creating the test database {name}: {e}");
    }
    Some(PgDb {
        url: cluster.url(&name),
        name,
        cluster,
    })
}

impl PgCluster {
    /// The sqlx URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@localhost/{name}?host={}&port={PORT}",
            self.dir.display()
        )
    }

    /// Runs one SQL statement with `psql` as the `postgres` user.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &PORT.to_string(), "-d", "postgres", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// The newest `/usr/lib/postgresql/<N>/bin` (Debian's layout), else the directory of an
/// `initdb` on PATH.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
}

fn start() -> Result<PgCluster, String> {
    let bin = bin_dir().ok_or(
        "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run \
         deploy/install-deps",
    )?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let script = format!(
        "set -e\n\
         D=$(mktemp -d /tmp/paas-pg-XXXXXX)\n\
         echo \"$D\"\n\
         '{bin}/initdb' -D \"$D/data\" -U postgres --auth=trust -E UTF8 --no-sync >\"$D/initdb.log\" 2>&1 || {{ cat \"$D/initdb.log\" >&2; exit 1; }}\n\
         '{bin}/postgres' -D \"$D/data\" -k \"$D\" -p {PORT} -c listen_addresses= -c fsync=off \
           -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 >\"$D/server.log\" 2>&1 &\n\
         pid=$!\n\
         read _ || true\n\
         kill -INT $pid 2>/dev/null || true\n\
         wait $pid || true\n\
         rm -rf \"$D\"\n",
        bin = bin.display()
    );
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let mut child = cmd
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting PostgreSQL (runuser -u postgres sh): {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the PostgreSQL test dir: {e}"))?;
    let dir = PathBuf::from(line.trim());
    if line.trim().is_empty() {
        let _ = child.wait();
        return Err("the PostgreSQL starter script printed no directory (see stderr)".into());
    }
    let cluster = PgCluster {
        dir,
        bin,
        _keeper: Mutex::new(child),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match cluster.psql("SELECT 1") {
            Ok(_) => return Ok(cluster),
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(cluster.dir.join("server.log"))
                    .or_else(|_| std::fs::read_to_string(cluster.dir.join("initdb.log")))
                    .unwrap_or_default();
                return Err(format!(
                    "PostgreSQL in {} did not answer within 60 s: {e}\n{log}",
                    cluster.dir.display()
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
        if let Ok(Some(status)) = cluster
            ._keeper
            .lock()
            .map(|mut c| c.try_wait().ok().flatten())
        {
            return Err(format!(
                "the PostgreSQL starter exited ({status}); see stderr above"
            ));
        }
    }
}
