//! Hostile tenants, part 6: inside the containers (issue 14, "Root on the host", "No walls
//! between apps"). Everything here runs as mallory's own jobs: her build, her release
//! phase, her one-off `paas run` and `paas ps:exec` in her web job.
//!
//! * Every job runs in a user namespace (`/proc/self/uid_map` is never `0 0 4294967295`),
//!   and her app's range is not vic's.
//! * Nothing she does in a job changes a host device node (`chown`/`chmod` on `/dev/null`
//!   and friends), and a block device she makes with `mknod` cannot be read.
//! * Her jobs reach vic's app neither at its container address nor at its host port via
//!   the bridge gateway, while her own web job answers her; no CAP_NET_RAW (no ping, so
//!   no crafted frames either: ARP spoofing needs a raw or packet socket); IPv6 off; link-local addresses (the metadata range) are
//!   dropped — proven against a listener the test puts on a link-local address of an empty
//!   bridge on this host, so no packet ever leaves the machine.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use paas_e2e::tenants::{World, MAL_PAGE, VIC_PAGE};

/// The `0 <host first> <count>` lines of a uid_map, as (host first, count).
fn ranges(uid_map: &str) -> Vec<(u64, u64)> {
    uid_map
        .lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (v.len() == 3).then(|| (v[1], v[2]))
        })
        .collect()
}

fn is_host_root(uid_map: &str) -> bool {
    uid_map
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .any(|w| w == ["0", "0", "4294967295"])
        || ranges(uid_map).is_empty()
}

/// The value after `label` on a line of `text`.
fn line_after<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.split_once(label).map(|(_, v)| v.trim()))
}

#[test]
fn every_job_runs_in_a_user_namespace_of_its_own_app() {
    let Some(w) = World::start() else { return };
    let src = paas_e2e::AppDir::new();
    src.write("index.html", &format!("<h1>{MAL_PAGE}</h1>\n"));
    src.write(
        "Procfile",
        "web: httpd -f -p $PORT -h /app\nrelease: sh /app/release.sh\n",
    );
    src.write(
        "release.sh",
        "echo \"release uid_map: $(cat /proc/self/uid_map)\"\n",
    );
    src.write(
        ".profile.d/uidmap.sh",
        "echo \"build uid_map: $(cat /proc/self/uid_map)\" >&2\n",
    );
    src.commit("mal");
    let push = w.push_as(&w.mallory, &src, "mal");
    assert!(push.ok, "{}", push.output);
    w.paas
        .wait_for_body("mal", MAL_PAGE, Duration::from_secs(60))
        .unwrap();

    let mut maps = Vec::new();
    for label in ["build uid_map:", "release uid_map:"] {
        let map = line_after(&push.output, label)
            .unwrap_or_else(|| panic!("the push printed {label:?}:\n{}", push.output));
        maps.push((label.trim_end_matches(':').to_string(), map.to_string()));
    }
    let run = w.mallory_runs("mal", "cat /proc/self/uid_map");
    maps.push(("one-off (paas run)".into(), run.stdout.clone()));
    let exec = w.mallory_cli(&["ps:exec", "-a", "mal", "--", "cat", "/proc/self/uid_map"]);
    maps.push(("web job (paas ps:exec)".into(), exec.stdout.clone()));
    let vic = w.vic_cli(&["ps:exec", "-a", "vic", "--", "cat", "/proc/self/uid_map"]);
    maps.push(("vic's web job".into(), vic.stdout.clone()));

    let mut wrong: Vec<String> = maps
        .iter()
        .filter(|(_, m)| is_host_root(m))
        .map(|(what, m)| {
            format!(
                "{what}: uid_map {:?} (container root is host root)",
                m.trim()
            )
        })
        .collect();
    // mallory's app has one range for all its jobs, and it is not vic's.
    let mine = ranges(&maps[2].1);
    let theirs = ranges(&maps[4].1);
    for (a, n) in &mine {
        for (b, m) in &theirs {
            if a < &(b + m) && b < &(a + n) {
                wrong.push(format!("mal's range {a}+{n} overlaps vic's {b}+{m}"));
            }
        }
    }
    if ranges(&maps[3].1) != mine {
        wrong.push(format!(
            "mal's one-off and web jobs have different ranges: {:?} / {:?}",
            maps[2].1.trim(),
            maps[3].1.trim()
        ));
    }
    assert!(
        wrong.is_empty(),
        "jobs without a user namespace of their own:\n{}",
        wrong.join("\n")
    );
    // The app still writes where it lives.
    let r = w.mallory_runs("mal", "echo ok > /app/written && cat /app/written");
    assert_eq!(r.stdout.trim(), "ok", "{r:?}");
}

/// A host device node's owner and mode, restored when dropped (the attack, if it works
/// today, must not leave the host changed).
struct NodeGuard {
    path: &'static str,
    uid: u32,
    gid: u32,
    mode: u32,
}

impl NodeGuard {
    fn new(path: &'static str) -> NodeGuard {
        let m = std::fs::metadata(path).unwrap();
        NodeGuard {
            path,
            uid: m.uid(),
            gid: m.gid(),
            mode: m.permissions().mode() & 0o7777,
        }
    }

    fn changed(&self) -> Option<String> {
        let m = std::fs::metadata(self.path).unwrap();
        let now = (m.uid(), m.gid(), m.permissions().mode() & 0o7777);
        (now != (self.uid, self.gid, self.mode)).then(|| {
            format!(
                "host {} changed from {}:{} {:o} to {}:{} {:o}",
                self.path, self.uid, self.gid, self.mode, now.0, now.1, now.2
            )
        })
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        let _ = std::os::unix::fs::chown(self.path, Some(self.uid), Some(self.gid));
        let _ = std::fs::set_permissions(self.path, std::fs::Permissions::from_mode(self.mode));
    }
}

/// `MAJ MIN` of the first disk in /sys/block (not a loop or ram device).
fn a_host_disk() -> Option<String> {
    std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("loop") || name.starts_with("ram") {
                return None;
            }
            let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
            Some(dev.trim().replace(':', " "))
        })
}

#[test]
fn a_member_cannot_change_host_device_nodes() {
    let Some(w) = World::start() else { return };
    w.mallory_app(&[]);
    // Harmless changes if they reach the host (everyone keeps read and write), restored
    // by the guards either way.
    let guards: Vec<NodeGuard> = ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"]
        .into_iter()
        .map(NodeGuard::new)
        .collect();
    let run = w.mallory_runs(
        "mal",
        "for d in null zero full urandom; do chown 4242:4242 /dev/$d; chmod 0667 /dev/$d; done; \
         ls -ln /dev/null",
    );
    let mut wrong: Vec<String> = guards.iter().filter_map(NodeGuard::changed).collect();
    drop(guards);
    if let Some(disk) = a_host_disk() {
        let r = w.mallory_runs(
            "mal",
            &format!("mknod /tmp/disk b {disk} && head -c 512 /tmp/disk | wc -c"),
        );
        if r.stdout.trim() == "512" {
            wrong.push(format!("mallory read the host disk {disk} through mknod"));
        }
    }
    assert!(
        wrong.is_empty(),
        "a job changed the host ({run:?}):\n{}",
        wrong.join("\n")
    );
}

/// A link-local address on an empty bridge of this test's own on this host (no port, so no
/// packet to it leaves the machine), removed when dropped.
struct LinkLocal {
    dev: String,
    addr: String,
}

impl LinkLocal {
    fn new(prefix: &str) -> LinkLocal {
        let dev = format!("{prefix}ll");
        // Never 169.254.169.254: a private address of this test's own.
        let addr = format!("169.254.213.{}", std::process::id() % 250 + 1);
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        ip(&["link", "add", &dev, "type", "bridge"]);
        let ll = LinkLocal { dev, addr };
        ip(&["addr", "add", &format!("{}/32", ll.addr), "dev", &ll.dev]);
        ip(&["link", "set", &ll.dev, "up"]);
        ll
    }
}

impl Drop for LinkLocal {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.dev]).output();
    }
}

#[test]
fn a_job_reaches_other_apps_only_through_the_router() {
    let Some(w) = World::start() else { return };
    w.mallory_app(&[]);
    let vic_job = w.agent_job(&w.vic_web_job());
    let vic_ip = vic_job["ip"].as_str().unwrap().to_string();
    let vic_port = vic_job["host_port"].as_u64().unwrap();
    let gateway = format!("{}.1", vic_ip.rsplit_once('.').unwrap().0);
    let mal_jobs = w.as_mallory("GET", "/v1/apps/mal/jobs", None).json();
    let mal_id = mal_jobs[0]["id"].as_str().unwrap().to_string();
    let mal_ip = w.agent_job(&mal_id)["ip"].as_str().unwrap().to_string();
    let ll = LinkLocal::new(&w.paas.prefix);
    let listener = TcpListener::bind(format!("{}:0", ll.addr)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let ll_port = listener.local_addr().unwrap().port();

    // busybox's wget crashes (SIGSEGV) in this busybox build: plain HTTP over nc instead,
    // bounded (nc waits for the server once connected).
    let get = |addr: &str| {
        let (host, port) = addr.rsplit_once(':').unwrap();
        w.mallory_runs(
            "mal",
            &format!(
                "printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' | timeout 5 nc -w 3 {host} {port} 2>&1"
            ),
        )
    };
    let mut wrong = Vec::new();
    // Her own web job answers her (walls are per app, not everything).
    let own = get(&format!("{mal_ip}:5000"));
    if !own.stdout.contains(MAL_PAGE) {
        wrong.push(format!("her own web job at {mal_ip}:5000: {own:?}"));
    }
    for url in [format!("{vic_ip}:5000"), format!("{gateway}:{vic_port}")] {
        let r = get(&url);
        if r.stdout.contains(VIC_PAGE) {
            wrong.push(format!("mallory read vic's page at {url}"));
        }
    }
    let r = get(&format!("{}:{ll_port}", ll.addr));
    if listener.accept().is_ok() {
        wrong.push(format!(
            "a job reached the link-local address {} ({r:?})",
            ll.addr
        ));
    }
    let status = w.mallory_runs("mal", "grep CapEff /proc/self/status");
    let cap_eff = line_after(&status.stdout, "CapEff:")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .unwrap_or(u64::MAX);
    if cap_eff & (1 << 13) != 0 {
        wrong.push(format!("the job has CAP_NET_RAW: CapEff {cap_eff:x}"));
    }
    let ping = w.mallory_runs(
        "mal",
        &format!("ping -c 1 -W 2 {gateway} >/dev/null 2>&1 && echo pinged"),
    );
    if ping.stdout.contains("pinged") {
        wrong.push("a job sends raw ICMP (ping)".into());
    }
    let v6 = w.mallory_runs("mal", "cat /proc/sys/net/ipv6/conf/all/disable_ipv6");
    if v6.stdout.trim() != "1" {
        wrong.push(format!(
            "IPv6 is on in jobs: disable_ipv6 = {:?}",
            v6.stdout.trim()
        ));
    }
    drop(ll);
    assert!(
        wrong.is_empty(),
        "a job of mal went past the walls:\n{}",
        wrong.join("\n")
    );
    w.assert_vic_untouched();
}
