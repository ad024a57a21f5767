//! The world of the hostile-tenant journeys (`tests/tenants*.rs`, issue 14): on a fresh
//! standalone paas the admin makes two members with the CLI, `vic` and `mallory`; vic pushes
//! an app `vic` that serves a page only vic may read ([`VIC_PAGE`]); mallory owns an app
//! `mal` when a journey needs one. Every attack is played with mallory's own token, over the
//! real API, CLI, git, registry and dashboard, and each journey ends by checking that vic's
//! app is as it was ([`World::assert_vic_untouched`]): same releases, config, formation,
//! domains, certificates, collaborators and jobs, still serving its page.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{require_root, Answer, AppDir, Member, Paas, Push};

/// What vic's app serves: mallory must never read it.
pub const VIC_PAGE: &str = "vic-private-page-5c1e";
/// What mallory's app serves.
pub const MAL_PAGE: &str = "mal-page-93ab";

/// A running paas with members vic (app `vic`, deployed) and mallory.
pub struct World {
    pub paas: Paas,
    pub vic: Member,
    pub mallory: Member,
    /// vic's source folder (pushed as `vic`).
    pub vic_src: AppDir,
    /// The test's own files (certificates, skopeo's home, copies), outside the data dir.
    pub scratch: tempfile::TempDir,
    /// vic's app as it was after its deploy (see [`World::snapshot`]).
    before: Value,
}

/// The output of a CLI command: exit code and both streams.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout and stderr together.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl World {
    /// A fresh world, or `None` when the test may not run (not root, outside CI).
    pub fn start() -> Option<World> {
        World::start_with_args(&[])
    }

    /// [`World::start`] with more controller flags.
    pub fn start_with_args(extra: &[&str]) -> Option<World> {
        if !require_root() {
            return None;
        }
        let paas = Paas::start_with_args(crate::stacks_dir(), extra);
        let vic = paas.add_member("vic");
        let mallory = paas.add_member("mallory");
        let vic_src = AppDir::new();
        vic_src.write("index.html", &format!("<h1>{VIC_PAGE}</h1>\n"));
        vic_src.commit("vic v1");
        let push = vic_src.push(&paas.git_url_with("vic", Some(&vic.token)), "main");
        assert!(
            push.ok,
            "vic's first push failed:\n{}\n{}",
            push.output,
            paas.log()
        );
        paas.wait_for_body("vic", VIC_PAGE, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", paas.log()));
        let mut world = World {
            paas,
            vic,
            mallory,
            vic_src,
            scratch: tempfile::tempdir().unwrap(),
            before: Value::Null,
        };
        world.before = world.snapshot();
        Some(world)
    }

    /// A request with mallory's token.
    pub fn as_mallory(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.paas
            .call(Some(&self.mallory.token), method, path, body)
    }

    /// A request with vic's token.
    pub fn as_vic(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.paas.call(Some(&self.vic.token), method, path, body)
    }

    /// A request with the admin token.
    pub fn as_admin(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.paas.call(Some(&self.paas.token), method, path, body)
    }

    /// The `paas` CLI with mallory's token.
    pub fn mallory_cli(&self, args: &[&str]) -> Ran {
        Ran::from(self.paas.cli_as(&self.mallory.token, args))
    }

    /// The `paas` CLI with vic's token.
    pub fn vic_cli(&self, args: &[&str]) -> Ran {
        Ran::from(self.paas.cli_as(&self.vic.token, args))
    }

    /// `git push` of `src` to `app` with `who`'s token.
    pub fn push_as(&self, who: &Member, src: &AppDir, app: &str) -> Push {
        src.push(&self.paas.git_url_with(app, Some(&who.token)), "main")
    }

    /// mallory's own app `mal`, pushed and serving [`MAL_PAGE`] (a static site; `extra`
    /// files are added to it, e.g. `.profile.d` scripts that run in her build).
    pub fn mallory_app(&self, extra: &[(&str, &str)]) -> AppDir {
        let src = AppDir::new();
        src.write("index.html", &format!("<h1>{MAL_PAGE}</h1>\n"));
        for (path, content) in extra {
            src.write(path, content);
        }
        src.commit("mal v1");
        let push = self.push_as(&self.mallory, &src, "mal");
        assert!(
            push.ok,
            "mallory's push of her own app failed:\n{}\n{}",
            push.output,
            self.paas.log()
        );
        self.paas
            .wait_for_body("mal", MAL_PAGE, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.paas.log()));
        src
    }

    /// `paas run -a APP -- sh -c SCRIPT` as mallory.
    pub fn mallory_runs(&self, app: &str, script: &str) -> Ran {
        self.mallory_cli(&["run", "-a", app, "--", "sh", "-c", script])
    }

    /// vic's app as the admin sees it: everything an attack could change.
    pub fn snapshot(&self) -> Value {
        let get = |path: &str| -> Value {
            let a = self.as_admin("GET", path, None);
            if a.status == 200 {
                a.json()
            } else {
                Value::String(format!("{a}"))
            }
        };
        let releases: Vec<Value> = get("/v1/apps/vic/releases")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "version": r["version"], "image": r["image"], "status": r["status"],
                    "description": r["description"],
                })
            })
            .collect();
        let mut jobs: Vec<Value> = get("/v1/apps/vic/jobs")
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j["state"] == "up")
            // One-off jobs (`paas run`, cron) come and go by themselves.
            .filter(|j| j["type"] != "run" && j["type"] != "cron")
            .map(|j| serde_json::json!({"id": j["id"], "type": j["type"]}))
            .collect();
        jobs.sort_by_key(|j| j.to_string());
        let app = get("/v1/apps/vic");
        serde_json::json!({
            "app": {"name": app["name"], "current_release": app["current_release"]},
            "releases": releases,
            "config": get("/v1/apps/vic/config"),
            "formation": get("/v1/apps/vic/formation"),
            "domains": get("/v1/apps/vic/domains"),
            "certs": get("/v1/apps/vic/certs"),
            "collaborators": get("/v1/apps/vic/collaborators"),
            "buildpack": get("/v1/apps/vic/buildpack"),
            "tls": get("/v1/apps/vic/tls"),
            "api_access": get("/v1/apps/vic/api-access"),
            "jobs": jobs,
        })
    }

    /// Takes a new "before" picture of vic's app (after a journey changed it on purpose).
    pub fn remember_vic(&mut self) {
        self.before = self.snapshot();
    }

    /// vic's app still serves its page and nothing of it changed since the start (or the
    /// last [`World::remember_vic`]).
    #[track_caller]
    pub fn assert_vic_untouched(&self) {
        self.paas
            .wait_for_body("vic", VIC_PAGE, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("vic's app no longer serves its page: {e}"));
        let now = self.snapshot();
        if now != self.before {
            panic!(
                "vic's app changed:\nbefore: {:#}\nnow:    {:#}",
                self.before, now
            );
        }
    }

    /// The apps the admin sees, by name.
    pub fn app_names(&self) -> Vec<String> {
        self.as_admin("GET", "/v1/apps", None)
            .json()
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The id of vic's running web job.
    pub fn vic_web_job(&self) -> String {
        let jobs = self.as_admin("GET", "/v1/apps/vic/jobs", None).json();
        jobs.as_array()
            .and_then(|a| {
                a.iter()
                    .find(|j| j["type"] == "web" && j["state"] == "up")
                    .and_then(|j| j["id"].as_str())
            })
            .map(str::to_string)
            .unwrap_or_else(|| panic!("vic has no web job up: {jobs}"))
    }

    /// What the local agent reports for a job (ip, host_port, addr, …).
    pub fn agent_job(&self, id: &str) -> Value {
        self.paas
            .agent_jobs()
            .unwrap()
            .into_iter()
            .find(|j| j["id"] == id)
            .unwrap_or_else(|| panic!("the agent does not know job {id}"))
    }
}

/// Polls `f` every 250 ms until it is true, for at most `secs`; false when it never was.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A self-signed certificate and key (PEM) for `names` with `cn` as the subject, made by
/// openssl in `dir`.
pub fn certificate(dir: &std::path::Path, cn: &str, names: &[&str]) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .arg("-addext")
        .arg(format!("subjectAltName={}", sans.join(",")))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed (deploy/install-deps)");
    assert!(out.status.success(), "openssl: {out:?}");
    (
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    )
}
