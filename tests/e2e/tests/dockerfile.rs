//! Journeys of Dockerfile apps built by paas's own builder (real standalone paas, real
//! `git push`): a multi-stage app compiled on bookworm and run on tiny, its warm rebuild
//! from the changed COPY on; bad Dockerfiles that keep the old release serving; and a
//! member's `FROM apps/<another member's app>` refused as an image deploy is.

use std::time::Duration;

use paas_e2e::{bookworm_stacks_dir, require_root, AppDir, Paas};

/// A web server in Go with only the `net` package (a cold compile stays small): answers
/// every request with `$GREETING` and the text of /srv/static/msg.txt.
const MAIN_GO: &str = r#"package main

import (
	"net"
	"os"
)

func main() {
	port := os.Getenv("PORT")
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			c.Read(buf)
			msg, _ := os.ReadFile("/srv/static/msg.txt")
			body := os.Getenv("GREETING") + " " + string(msg)
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + body))
		}(c)
	}
}
"#;

const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\n\
ARG GREETING=hello\n\
FROM bookworm AS build\n\
WORKDIR /src\n\
ENV CGO_ENABLED=0 HOME=/tmp GOCACHE=/tmp/gocache GOFLAGS=-trimpath\n\
COPY go.mod ./\n\
COPY *.go ./\n\
RUN go build -o /out/server . \\\n\
 && echo built\n\
\n\
FROM tiny\n\
ARG GREETING\n\
ENV GREETING=${GREETING}\n\
COPY --from=build /out/server /bin/server\n\
COPY --chown=app:app static/ /srv/static/\n\
USER app\n\
EXPOSE 8080\n\
CMD [\"/bin/server\"]\n";

/// The line after `Step N/M : <step>` in the push output, or "" when that step is absent.
fn after_step<'a>(output: &'a str, step: &str) -> &'a str {
    let lines: Vec<&str> = output.lines().collect();
    lines
        .iter()
        .position(|l| l.contains(" : ") && l.trim_end().ends_with(step))
        .and_then(|i| lines.get(i + 1).copied())
        .unwrap_or("")
}

#[test]
fn a_multi_stage_app_deploys_and_a_one_file_change_rebuilds_from_its_copy() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write("Dockerfile", DOCKERFILE)
        .write("go.mod", "module example.com/server\n\ngo 1.19\n")
        .write("main.go", MAIN_GO)
        .write("static/msg.txt", "from v1\n")
        .write(".dockerignore", "*.md\n");
    app.write("README.md", "not in the image\n");
    app.commit("v1");
    let started = std::time::Instant::now();
    let push = app.push(&paas.git_url("multi"), "main");
    eprintln!(
        "dockerfile multi-stage cold push: {} ms",
        started.elapsed().as_millis()
    );
    assert!(push.ok, "first push failed:\n{}", push.output);
    for expected in [
        "with Dockerfile (paas's Dockerfile builder)",
        "`# syntax=docker/dockerfile:1` is ignored",
        "Step 1/14 : FROM bookworm AS build",
        "Step 7/14 : FROM tiny",
        "remote: built",
        "Setting PORT=8080",
        "Releasing v1",
    ] {
        assert!(
            push.output.contains(expected),
            "push output lacks {expected:?}:\n{}",
            push.output
        );
    }
    assert!(
        !push.output.contains("CACHED"),
        "a cold build reuses nothing:\n{}",
        push.output
    );
    paas.wait_for_body("multi", "hello from v1", Duration::from_secs(60))
        .unwrap();

    // One file changes: the steps before its COPY are reused, the Go build too (its
    // inputs did not change), and the static COPY is redone.
    app.write("static/msg.txt", "from v2\n");
    app.commit("v2");
    let started = std::time::Instant::now();
    let push = app.push(&paas.git_url("multi"), "main");
    eprintln!(
        "dockerfile multi-stage warm push (one file changed): {} ms",
        started.elapsed().as_millis()
    );
    assert!(push.ok, "second push failed:\n{}", push.output);
    for step in [
        "COPY go.mod ./",
        "COPY *.go ./",
        "&& echo built",
        "COPY --from=build /out/server /bin/server",
    ] {
        assert!(
            after_step(&push.output, step).contains("CACHED"),
            "{step} was not reused:\n{}",
            push.output
        );
    }
    assert!(
        !after_step(&push.output, "COPY --chown=app:app static/ /srv/static/").contains("CACHED"),
        "the changed COPY was reused:\n{}",
        push.output
    );
    assert!(!push.output.contains("remote: built"), "{}", push.output);
    paas.wait_for_body("multi", "hello from v2", Duration::from_secs(60))
        .unwrap();

    // A build arg from a config var of the same name; PAAS_NO_CACHE rebuilds everything.
    let out = paas.cli_as(
        &paas.token,
        &[
            "config:set",
            "GREETING=hey",
            "PAAS_NO_CACHE=1",
            "-a",
            "multi",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    app.write("static/msg.txt", "from v3\n");
    app.commit("v3");
    let push = app.push(&paas.git_url("multi"), "main");
    assert!(push.ok, "third push failed:\n{}", push.output);
    assert!(
        push.output
            .contains("Build args from config vars: GREETING=hey"),
        "{}",
        push.output
    );
    assert!(!push.output.contains("CACHED"), "{}", push.output);
    assert!(push.output.contains("remote: built"), "{}", push.output);
    paas.wait_for_body("multi", "hey from v3", Duration::from_secs(60))
        .unwrap();
}

#[test]
fn bad_dockerfiles_end_the_push_and_the_old_release_keeps_serving() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    let good = "FROM tiny\nWORKDIR /srv/www\nCOPY index.html ./\nRUN echo made > made.txt && rm -f /etc/motd\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv/www\"]\n";
    app.write("Dockerfile", good)
        .write("index.html", "<h1>served v1</h1>\n");
    app.commit("v1");
    let push = app.push(&paas.git_url("bad"), "main");
    assert!(push.ok, "first push failed:\n{}", push.output);
    paas.wait_for_body("bad", "served v1", Duration::from_secs(30))
        .unwrap();
    let (_, made) = paas.request_app("bad", "/made.txt").unwrap();
    assert!(
        made.contains("made"),
        "the RUN step's file is in the image: {made}"
    );

    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "RUN failure",
            "FROM tiny\nRUN echo boom-before-exit && exit 3\nCMD [\"true\"]\n",
            &[
                "the RUN step failed (exited 3)",
                "| boom-before-exit",
                "Dockerfile line 2",
            ],
        ),
        (
            "syntax error",
            "FROM tiny\n\nFROBNICATE all\n",
            &["Dockerfile line 3: unknown instruction `FROBNICATE`"],
        ),
        (
            "missing COPY source",
            "FROM tiny\nCOPY nope.txt /srv/\n",
            &[
                "nope.txt: no such file or directory in the build context",
                "Dockerfile line 2",
            ],
        ),
        (
            "unknown FROM",
            "FROM nosuchstack\nCMD [\"true\"]\n",
            &["FROM nosuchstack: no such image", "stacks/nosuchstack"],
        ),
        (
            "ONBUILD",
            "FROM tiny\nONBUILD RUN make\n",
            &["Dockerfile line 2: ONBUILD is not supported"],
        ),
    ];
    for (what, dockerfile, expected) in cases {
        app.write("Dockerfile", dockerfile);
        app.commit(what);
        let push = app.push(&paas.git_url("bad"), "main");
        assert!(!push.ok, "{what}: the push succeeded:\n{}", push.output);
        for e in expected {
            assert!(
                push.output.contains(e),
                "{what}: the push output lacks {e:?}:\n{}",
                push.output
            );
        }
        assert!(
            push.output.contains("The running release is unchanged"),
            "{what}:\n{}",
            push.output
        );
        let (status, body) = paas.request_app("bad", "/").unwrap();
        assert_eq!(status, 200, "{what}: v1 stopped serving");
        assert!(body.contains("served v1"), "{what}: {body}");
    }
    let releases = paas.get_json("/v1/apps/bad/releases").unwrap();
    assert_eq!(releases.as_array().unwrap().len(), 1, "{releases}");
    // Nothing of the failed RUN job is left on the node.
    let jobs = paas.agent_jobs().unwrap();
    assert!(
        !jobs
            .iter()
            .any(|j| j["id"].as_str().unwrap_or("").starts_with("build-")),
        "{jobs:?}"
    );
    // The layer cache is keyed by the app's number and goes with the app.
    let cache_dir = paas.data.path().join("dockerfile-cache");
    let files = || {
        std::fs::read_dir(&cache_dir)
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(files(), 1, "one app, one layer cache");
    let out = paas.cli_as(&paas.token, &["apps:destroy", "bad", "--confirm", "bad"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(files(), 0, "destroy deletes the layer cache");
}

#[test]
fn a_member_may_not_build_from_another_members_app_image() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let alice = paas.add_member("alice");
    let bob = paas.add_member("bob");
    let app = AppDir::new();
    app.write(
        "Dockerfile",
        "FROM tiny\nCOPY secret.txt /srv/secret.txt\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv\"]\n",
    )
        .write("secret.txt", "alice's secret\n");
    app.commit("alice's base");
    let push = app.push(&paas.git_url_with("alice-base", Some(&alice.token)), "main");
    assert!(push.ok, "alice's push failed:\n{}", push.output);

    // Bob's app cannot start from it: the same answer as for an image that does not exist.
    let bobs = AppDir::new();
    bobs.write(
        "Dockerfile",
        "FROM apps/alice-base:latest\nRUN cat /srv/secret.txt\n",
    );
    bobs.commit("bob's");
    let push = bobs.push(&paas.git_url_with("bob-app", Some(&bob.token)), "main");
    assert!(!push.ok, "bob built from alice's image:\n{}", push.output);
    assert!(
        push.output
            .contains("FROM apps/alice-base:latest: no such image"),
        "{}",
        push.output
    );
    assert!(!push.output.contains("alice's secret"), "{}", push.output);

    // Alice may build her second app from her first; so may the admin.
    let again = AppDir::new();
    again.write(
        "Dockerfile",
        "FROM apps/alice-base:latest\nRUN cat /srv/secret.txt\n",
    );
    again.commit("alice's second");
    let push = again.push(&paas.git_url_with("alice-two", Some(&alice.token)), "main");
    assert!(push.ok, "alice's second push failed:\n{}", push.output);
    assert!(push.output.contains("alice's secret"), "{}", push.output);
    let push = again.push(&paas.git_url("admin-two"), "main");
    assert!(push.ok, "the admin's push failed:\n{}", push.output);
}

/// A static web server for a `FROM scratch` image: answers `scratch says $GREETING`;
/// `/server once WORD` prints `once: WORD` and exits 0 (the release command, `paas run`).
const SCRATCH_GO: &str = r#"package main

import (
	"net"
	"os"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "once" {
		os.Stdout.WriteString("once: " + os.Args[2] + "\n")
		return
	}
	ln, err := net.Listen("tcp", ":"+os.Getenv("PORT"))
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			c.Read(buf)
			c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nscratch says " + os.Getenv("GREETING")))
		}(c)
	}
}
"#;

/// Compiles on bookworm, checks there that COPY and WORKDIR onto bookworm's symlinked
/// `/bin` land in `/usr/bin` and keep `/bin` a symlink, and runs the binary alone in
/// `FROM scratch` (no shell, no libc).
const SCRATCH_DOCKERFILE: &str = "FROM bookworm AS build\n\
WORKDIR /src\n\
ENV CGO_ENABLED=0 HOME=/tmp GOCACHE=/tmp/gocache GOFLAGS=-trimpath\n\
COPY go.mod main.go ./\n\
RUN go build -o /out/server .\n\
COPY tool.sh /bin/paas-tool\n\
WORKDIR /bin/paas-dir\n\
RUN test -L /bin && test -f /usr/bin/paas-tool && test -d /usr/bin/paas-dir \\\n\
 && [ \"$(pwd -P)\" = /usr/bin/paas-dir ] && paas-tool\n\
\n\
FROM scratch\n\
COPY --from=build /out/server /server\n\
COPY Procfile /\n\
ENV GREETING=hi\n\
EXPOSE 8080\n\
CMD [\"/server\"]\n";

#[test]
fn a_scratch_image_with_one_static_binary_serves_releases_and_runs() {
    if !require_root() {
        return;
    }
    let paas = Paas::start_with_stacks(bookworm_stacks_dir());
    let app = AppDir::new();
    app.write("Dockerfile", SCRATCH_DOCKERFILE)
        .write("go.mod", "module example.com/server\n\ngo 1.19\n")
        .write("main.go", SCRATCH_GO)
        .write("tool.sh", "#!/bin/sh\necho tool-in-usr-bin\n")
        .write("Procfile", "release: /server once released\n");
    std::fs::set_permissions(
        app.dir.path().join("tool.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    app.commit("v1");
    let push = app.push(&paas.git_url("bare"), "main");
    assert!(push.ok, "first push failed:\n{}", push.output);
    for expected in [
        "remote: tool-in-usr-bin",
        "Running release command",
        "once: released",
        "Releasing v1",
    ] {
        assert!(
            push.output.contains(expected),
            "push output lacks {expected:?}:\n{}",
            push.output
        );
    }
    // No shell: `web` is CMD's argv, run as it is.
    paas.wait_for_body("bare", "scratch says hi", Duration::from_secs(60))
        .unwrap();
    let release = paas.get_json("/v1/apps/bare/releases/1").unwrap();
    assert_eq!(
        release["process_types"]["web"], r#"["/server"]"#,
        "{release}"
    );

    // `paas run` of plain words needs no shell either.
    let out = paas.cli_as(
        &paas.token,
        &["run", "-a", "bare", "--", "/server", "once", "ran"],
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("once: ran"), "{text}");

    // A Procfile line that needs a shell ends the push with why, and v1 keeps serving.
    app.write("Procfile", "web: /server --port $PORT\n");
    app.commit("shell needed");
    let push = app.push(&paas.git_url("bare"), "main");
    assert!(
        !push.ok,
        "a shell line in a shell-less image deployed:\n{}",
        push.output
    );
    for expected in [
        "`web: /server --port $PORT` needs a shell",
        "the image has no /bin/sh",
        "The running release is unchanged",
    ] {
        assert!(
            push.output.contains(expected),
            "push output lacks {expected:?}:\n{}",
            push.output
        );
    }
    let (status, body) = paas.request_app("bare", "/").unwrap();
    assert_eq!(status, 200, "v1 stopped serving: {body}");
    assert!(body.contains("scratch says hi"), "{body}");

    // Plain words and JSON arrays do; a config change reaches the binary.
    app.write(
        "Procfile",
        "web: exec /server\nrelease: [\"/server\", \"once\", \"json form\"]\n",
    );
    app.commit("plain words");
    let push = app.push(&paas.git_url("bare"), "main");
    assert!(push.ok, "plain words failed:\n{}", push.output);
    assert!(push.output.contains("once: json form"), "{}", push.output);
    let out = paas.cli_as(&paas.token, &["config:set", "GREETING=hey", "-a", "bare"]);
    assert!(out.status.success(), "{out:?}");
    paas.wait_for_body("bare", "scratch says hey", Duration::from_secs(60))
        .unwrap();
}

#[test]
fn builds_create_rebuilds_the_last_push_and_no_cache_redoes_every_step() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let alice = paas.add_member("alice");
    let bob = paas.add_member("bob");
    let app = AppDir::new();
    app.write(
        "Dockerfile",
        "FROM tiny\nWORKDIR /srv/www\nCOPY index.html ./\nRUN { date +%s; od -An -N16 -tx1 /dev/urandom; } > stamp.txt\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/srv/www\"]\n",
    )
    .write("index.html", "<h1>rebuilt</h1>\n");
    app.commit("v1");
    let push = app.push(&paas.git_url_with("re", Some(&alice.token)), "main");
    assert!(push.ok, "alice's push failed:\n{}", push.output);
    paas.wait_for_body("re", "rebuilt", Duration::from_secs(30))
        .unwrap();
    // busybox `date` has no %N: the stamp is the second plus 16 random bytes, so two builds
    // in one second differ too (CI once ran all three builds inside two seconds).
    let stamp = || paas.request_app("re", "/stamp.txt").unwrap().1;
    let first = stamp();
    let text = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
    };

    // Without a push: every step from the cache, a new release of the same commit.
    let out = paas.cli_as(&alice.token, &["builds:create", "-a", "re"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for expected in [
        "Rebuilding re from",
        "---> CACHED",
        "Releasing v2",
        "runs v2",
    ] {
        assert!(said.contains(expected), "lacks {expected:?}:\n{said}");
    }
    assert_eq!(stamp(), first, "the cached RUN layer is the one served");

    // --no-cache redoes the RUN step.
    let out = paas.cli_as(&alice.token, &["builds:create", "-a", "re", "--no-cache"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("CACHED"), "{said}");
    assert!(said.contains("Releasing v3"), "{said}");
    paas.wait_for_body("re", "rebuilt", Duration::from_secs(30))
        .unwrap();
    assert_ne!(stamp(), first, "the RUN step ran again");

    // Bob cannot rebuild alice's app: the answer for a missing app.
    let out = paas.cli_as(&bob.token, &["builds:create", "-a", "re"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let ghost = paas.cli_as(&bob.token, &["builds:create", "-a", "ghost"]);
    assert_eq!(ghost.status.code(), Some(4), "{}", text(&ghost));
    assert!(!text(&out).contains("Rebuilding"), "{}", text(&out));
    let releases = paas.get_json("/v1/apps/re/releases").unwrap();
    assert_eq!(releases.as_array().unwrap().len(), 3, "{releases}");

    // An app with nothing pushed says so.
    let out = paas.cli_as(&alice.token, &["apps:create", "empty"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = paas.cli_as(&alice.token, &["builds:create", "-a", "empty"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing pushed yet"), "{}", text(&out));
}
