//! Journey of a hostile member against a real standalone paas: victor and mallory each push
//! an app (`vic2`, `mal`); mallory's one-off jobs (`paas run -a mal`) try vic2's page
//! straight from its container address and from its host port on the bridge gateway, and
//! are walled off, while victor's own one-off job gets it both ways (same tenant) and vic2
//! keeps serving through the router. Mallory's job also has no raw sockets (`ping` fails)
//! and no IPv6. (The metadata address 169.254.169.254 and other nodes' ports are probed in
//! node-agent/tests/walls.rs, inside network namespaces of the test's own: this journey
//! sends nothing beyond the machine's own bridge.)

use std::process::{Command, Output};
use std::time::Duration;

use paas_e2e::{bins, require_root, AppDir, Paas};

fn paas_as(p: &Paas, token: &str, args: &[&str]) -> Output {
    Command::new(&bins().cli)
        .args(args)
        .env("PAAS_URL", &p.api)
        .env("PAAS_TOKEN", token)
        .env("HOME", p.data.path())
        .output()
        .expect("run paas")
}

#[track_caller]
fn ok(o: &Output) -> String {
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

/// Makes a member and an API token for them.
fn member(p: &Paas, name: &str) -> String {
    ok(&paas_as(p, &p.token, &["users:add", name]));
    let out = ok(&paas_as(p, &p.token, &["tokens:create", "--user", name]));
    out.lines().next().unwrap().trim().to_string()
}

/// Pushes a busybox web app whose page says `page`, as the member with `token`.
fn push_app(p: &Paas, token: &str, app: &str, page: &str) {
    let dir = AppDir::new();
    dir.write(
        "Procfile",
        &format!(
            "web: sh -c 'mkdir -p /tmp/www && echo {page} > /tmp/www/index.html && \
             exec httpd -f -p $PORT -h /tmp/www'\n"
        ),
    );
    dir.commit(app);
    let push = dir.push(&p.git_url_with(app, Some(token)), "main");
    assert!(push.ok, "{app}: {}", push.output);
}

#[test]
fn a_members_job_reaches_another_members_app_only_through_the_router() {
    if !require_root() {
        return;
    }
    let p = Paas::start();
    let victor = member(&p, "victor");
    let mallory = member(&p, "mallory");
    push_app(&p, &victor, "vic2", "vic2-secret-page");
    push_app(&p, &mallory, "mal", "mal-page");
    p.wait_for_body("vic2", "vic2-secret-page", Duration::from_secs(60))
        .unwrap();

    // Where vic2 runs (mallory could find or guess it: the subnet is small).
    let jobs = p.agent_jobs().unwrap();
    let job = jobs
        .iter()
        .find(|j| j["labels"]["paas.app"] == "vic2" && j["state"] == "up")
        .unwrap_or_else(|| panic!("no vic2 job up: {jobs:?}"));
    let ip = job["ip"].as_str().unwrap().to_string();
    let host_port = job["host_port"].as_u64().unwrap();
    let port = job["addr"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .unwrap()
        .to_string();
    let gateway = format!("{}.1", ip.rsplit_once('.').unwrap().0);
    let direct = format!("http://{ip}:{port}/");
    let via_gateway = format!("http://{gateway}:{host_port}/");

    for url in [&direct, &via_gateway] {
        let out = ok(&paas_as(
            &p,
            &mallory,
            &[
                "run",
                "-a",
                "mal",
                "--",
                "sh",
                "-c",
                &format!("if timeout 5 wget -q -O - {url}; then echo GOT-IN; else echo WALLED; fi"),
            ],
        ));
        assert!(
            out.contains("WALLED") && !out.contains("vic2-secret-page"),
            "mallory's job read {url}:\n{out}"
        );
    }
    // The same paths work for vic2's own tenant: the wall is the tenant, not the path.
    let out = ok(&paas_as(
        &p,
        &victor,
        &[
            "run",
            "-a",
            "vic2",
            "--",
            "sh",
            "-c",
            &format!("timeout 5 wget -q -O - {direct}; timeout 5 wget -q -O - {via_gateway}"),
        ],
    ));
    assert_eq!(out.matches("vic2-secret-page").count(), 2, "{out}");

    // No raw sockets, no IPv6 in mallory's job.
    let out = ok(&paas_as(
        &p,
        &mallory,
        &[
            "run",
            "-a",
            "mal",
            "--",
            "sh",
            "-c",
            &format!(
                "if ping -c 1 -W 2 {gateway} >/dev/null 2>&1; then echo PING; \
                 else echo NO-PING; fi; \
                 echo ipv6=$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6)"
            ),
        ],
    ));
    assert!(out.contains("NO-PING") && out.contains("ipv6=1"), "{out}");

    // vic2 still serves everyone through the router.
    let (status, body) = p.request_app("vic2", "/").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("vic2-secret-page"), "{body}");
}
