//! Journey: the dashboard in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` with fantoccini) against a standalone paas with real containers: log in
//! (a wrong password shows an error), create an app, push it with git, set a config var and
//! see the new release, a bad key's error next to the field, automatic certificates off (and
//! the controller's reason when turned on without an ACME CA), scale web to 2 and see 2
//! jobs, restart one job and see it replaced, "Restart all web" and see both replaced,
//! "Stop" one job and see it gone and replaced by the formation, roll back, watch live log
//! lines arrive and the CPU and memory charts draw, drain and undrain the node, and read
//! the pages on a phone-sized window. Then a member logs in: sees only the app they
//! collaborate on, gets the 404 page (with the nav bar and logout) for another app and for
//! an unknown path, 403 for the nodes page, renames their app and destroys it (a wrong
//! confirmation shows an error by the field). The add-on journey is in
//! `dashboard_addons.rs`; the browser helpers are in `browser_common/`. Screenshots go to
//! `target/screenshots/` (CI keeps them).
//!
//! Without chromium/chromedriver the test skips, except under `CI=true`, where it fails.

mod browser_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser_common::{
    api_post, at, browser, click, count, eventually, fill, require_browser, shot, submit, text,
    up_web_jobs, Driver, CHART_DRAWN,
};
use fantoccini::Locator;
use paas_e2e::{require_root, AppDir, Paas};

#[test]
fn dashboard_in_a_real_browser() {
    if !require_root() || !require_browser() {
        return;
    }
    let p = Paas::start();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = p.api.clone();
    let b = rt.block_on(browser(&driver, profile.path()));

    rt.block_on(async {
        // Pages need a session: the apps list sends the browser to the login form.
        b.goto(&format!("{api}/")).await.unwrap();
        at(&b, "/login").await;
        shot(&b, "login").await;

        // A wrong password is refused with a message on the form.
        fill(&b, "#user", "admin").await;
        fill(&b, "#password", "not-the-token").await;
        submit(&b, "#login-form button[type=submit]").await;
        let err = text(&b, "#login-error").await;
        assert!(err.contains("Wrong user name or password"), "{err:?}");
        shot(&b, "login-error").await;

        // The right one (the admin token) opens the apps list.
        fill(&b, "#user", "admin").await;
        fill(&b, "#password", &p.token).await;
        submit(&b, "#login-form button[type=submit]").await;
        at(&b, "/").await;
        assert!(b.source().await.unwrap().contains("No apps yet"));

        // A bad app name shows the error by the form; a good one opens the app's page.
        fill(&b, "#new-app-name", "Bad_Name").await;
        submit(&b, "#create-app button").await;
        assert!(!text(&b, "#create-error").await.is_empty());
        fill(&b, "#new-app-name", "dash").await;
        submit(&b, "#create-app button").await;
        at(&b, "/apps/dash").await;
        assert!(text(&b, "#current-release")
            .await
            .contains("no release yet"));
    });

    // Push the code with git (outside the browser).
    let app = AppDir::new();
    app.write("index.html", "<h1>dashboard journey</h1>\n");
    app.commit("v1");
    let push = app.push(&p.git_url("dash"), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    p.wait_for_body("dash", "dashboard journey", Duration::from_secs(60))
        .unwrap();

    let app_url = format!("{api}/apps/dash");
    rt.block_on(async {
        eventually(&b, &app_url, "v1 current", Duration::from_secs(30), |s| {
            s.contains("id=\"current-release\">v1<")
        })
        .await;
        assert!(text(&b, "#builds-table").await.contains("succeeded"));

        // Set a config var: a new release, v2, described "Set GREETING".
        fill(&b, "#config-key", "GREETING").await;
        fill(&b, "#config-value", "hello from the browser").await;
        submit(&b, "#config-form button[type=submit]").await;
        at(&b, "/apps/dash").await;
        assert_eq!(text(&b, "#current-release").await, "v2");
        assert!(text(&b, "#releases-table").await.contains("Set GREETING"));
        // Masked until revealed.
        let row = "#config-table tr[data-key=GREETING]";
        assert!(!b
            .find(Locator::Css(&format!("{row} .secret")))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap());
        click(&b, &format!("{row} button.reveal")).await;
        assert_eq!(
            text(&b, &format!("{row} .secret")).await,
            "hello from the browser"
        );

        // A bad key: the error sits next to the key field, what was typed is kept, and
        // no release is made.
        fill(&b, "#config-key", "BAD KEY").await;
        fill(&b, "#config-value", "x").await;
        submit(&b, "#config-form button[type=submit]").await;
        let err = text(&b, "#config-form .field #config-error").await;
        assert!(!err.is_empty(), "no error next to the key field");
        let key = b.find(Locator::Css("#config-key")).await.unwrap();
        assert_eq!(key.prop("value").await.unwrap().as_deref(), Some("BAD KEY"));
        assert_eq!(
            key.attr("aria-describedby").await.unwrap().as_deref(),
            Some("config-error")
        );
        assert_eq!(text(&b, "#current-release").await, "v2");
        shot(&b, "config-error").await;

        // Automatic certificates: off; this controller has no ACME CA, so turning them on
        // shows the API's reason next to the switch and changes nothing.
        assert_eq!(text(&b, "#acme-state").await, "off");
        submit(&b, "#acme button[type=submit]").await;
        let err = text(&b, "#acme #acme-error").await;
        assert!(err.contains("--acme-directory"), "{err:?}");
        assert_eq!(text(&b, "#acme-state").await, "off");
        b.execute("document.getElementById('acme').scrollIntoView();", vec![])
            .await
            .unwrap();
        shot(&b, "acme-error").await;

        // Volumes: a bad size is refused next to the form; a good one is listed, mounted
        // into web, unmounted and destroyed (once the job that had it has stopped).
        fill(&b, "#volume-name", "files").await;
        fill(&b, "#volume-size", "2X").await;
        submit(&b, "#volume-form button[type=submit]").await;
        let err = text(&b, "#volume-error").await;
        assert!(err.contains("not a volume size"), "{err:?}");
        fill(&b, "#volume-name", "files").await;
        fill(&b, "#volume-size", "16M").await;
        submit(&b, "#volume-form button[type=submit]").await;
        at(&b, "/apps/dash").await;
        let row = "#volume-list tr[data-volume=files]";
        assert!(
            text(&b, row).await.contains("16M"),
            "{}",
            text(&b, row).await
        );
        fill(
            &b,
            &format!("{row} form.volume-mount input[name=path]"),
            "/data",
        )
        .await;
        submit(&b, &format!("{row} form.volume-mount button")).await;
        at(&b, "/apps/dash").await;
        assert!(
            text(&b, row).await.contains("web:/data"),
            "{}",
            text(&b, row).await
        );
        shot(&b, "volumes").await;
        submit(&b, &format!("{row} form.inline-form button")).await;
        at(&b, "/apps/dash").await;
        let mut destroyed = false;
        for _ in 0..40 {
            fill(
                &b,
                &format!("{row} form.volume-destroy input[name=confirm]"),
                "dash",
            )
            .await;
            submit(&b, &format!("{row} form.volume-destroy button")).await;
            if b.source().await.unwrap().contains("No volumes.") {
                destroyed = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            b.goto(&app_url).await.unwrap();
        }
        assert!(
            destroyed,
            "the volume was never destroyed: {}",
            text(&b, "#volume-error").await
        );

        // Scale web to 2 and see two jobs up.
        fill(&b, "form.scale[data-type=web] input[name=quantity]", "2").await;
        submit(&b, "form.scale[data-type=web] button").await;
        eventually(
            &b,
            &app_url,
            "two web jobs up",
            Duration::from_secs(90),
            |s| count(s, "data-type=\"web\" data-state=\"up\"") == 2,
        )
        .await;
        shot(&b, "app").await;

        // Restart one web job: a replacement starts, takes over, and the old one goes.
        let before = up_web_jobs(&b).await;
        assert_eq!(before.len(), 2, "{before:?}");
        let restarted = before[0].clone();
        submit(
            &b,
            &format!("tr.job[data-job=\"{restarted}\"] form.job-restart button"),
        )
        .await;
        at(&b, "/apps/dash").await;
        assert!(text(&b, "#jobs-error").await.is_empty());
        eventually(
            &b,
            &app_url,
            "the restarted job replaced",
            Duration::from_secs(120),
            |s| {
                count(s, "data-type=\"web\" data-state=\"up\"") == 2
                    && !s.contains(&format!("data-job=\"{restarted}\""))
            },
        )
        .await;

        // "Restart all web" on the formation card: both web jobs are replaced.
        let before = up_web_jobs(&b).await;
        assert_eq!(before.len(), 2, "{before:?}");
        submit(
            &b,
            "form.scale[data-type=web] button[formaction$='/restart']",
        )
        .await;
        at(&b, "/apps/dash").await;
        assert!(text(&b, "#jobs-error").await.is_empty());
        eventually(
            &b,
            &app_url,
            "every web job replaced",
            Duration::from_secs(180),
            |s| {
                count(s, "data-type=\"web\" data-state=\"up\"") == 2
                    && before
                        .iter()
                        .all(|id| !s.contains(&format!("data-job=\"{id}\"")))
            },
        )
        .await;

        // "Stop" one job: it goes, and the formation (web=2) starts another.
        let before = up_web_jobs(&b).await;
        assert_eq!(before.len(), 2, "{before:?}");
        let stopped = before[1].clone();
        submit(
            &b,
            &format!("tr.job[data-job=\"{stopped}\"] form.job-stop button"),
        )
        .await;
        at(&b, "/apps/dash").await;
        assert!(text(&b, "#jobs-error").await.is_empty());
        eventually(
            &b,
            &app_url,
            "the stopped job gone and replaced",
            Duration::from_secs(120),
            |s| {
                count(s, "data-type=\"web\" data-state=\"up\"") == 2
                    && !s.contains(&format!("data-job=\"{stopped}\""))
                    && s.contains(&format!("data-job=\"{}\"", before[0]))
            },
        )
        .await;

        // Roll back to v1: a new release v3, "Rollback to v1", without GREETING.
        submit(
            &b,
            "#releases-table tr[data-version=\"1\"] form.rollback button",
        )
        .await;
        assert_eq!(text(&b, "#current-release").await, "v3");
        let releases = text(&b, "#releases-table").await;
        assert!(releases.contains("Rollback to v1"), "{releases}");
        assert!(b
            .find(Locator::Css("#config-table tr[data-key=GREETING]"))
            .await
            .is_err());
    });

    // Live logs: requests to the app make its web processes log lines, which arrive in the
    // open page over the event stream.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (stop, router, host) = (Arc::clone(&stop), p.router_addr.clone(), "dash.localhost");
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok(mut s) = std::net::TcpStream::connect(&router) {
                    use std::io::{Read, Write};
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = write!(
                        s,
                        "GET /from-the-browser-test HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = s.read_to_end(&mut Vec::new());
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    rt.block_on(async {
        b.goto(&app_url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut before = None;
        loop {
            let log = text(&b, "#live-log").await;
            let lines = log.lines().filter(|l| l.contains("app[web.")).count();
            // Lines that arrive after the page opened: more than the page first had.
            match before {
                None if !log.is_empty() => before = Some(lines),
                Some(n) if lines > n => break,
                _ => {}
            }
            if Instant::now() > deadline {
                panic!(
                    "no new live log line arrived within 60 s; the log showed:\n{log}\n\
                     state: {}\ncontroller log:\n{}",
                    text(&b, "#live-log-state").await,
                    p.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(text(&b, "#live-log-state").await.starts_with("Live"));

        // The charts: once the agents' stats arrive, app.js draws a line on a canvas.
        let deadline = Instant::now() + Duration::from_secs(90);
        while b.execute(CHART_DRAWN, vec![]).await.unwrap() != serde_json::json!(true) {
            if Instant::now() > deadline {
                let stats = b
                    .execute(
                        "return fetch(document.getElementById('charts').dataset.src)\
                         .then(r => r.text());",
                        vec![],
                    )
                    .await
                    .unwrap();
                panic!("no chart line was drawn within 90 s; stats.json: {stats}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        shot(&b, "charts").await;

        // The nodes page: the node, its capacity and use, a drain button that works.
        b.goto(&format!("{api}/nodes")).await.unwrap();
        let nodes = text(&b, "#nodes").await;
        assert!(nodes.contains("up"), "{nodes}");
        assert!(nodes.contains("dash/web"), "{nodes}");
        shot(&b, "nodes").await;
        submit(&b, "#nodes form[action$='/drain'] button").await;
        assert!(text(&b, "#nodes").await.contains("draining"));
        submit(&b, "#nodes form[action$='/undrain'] button").await;
        assert!(!text(&b, "#nodes").await.contains("draining"));

        // The apps list shows the app's status, release and jobs.
        b.goto(&format!("{api}/")).await.unwrap();
        let row = text(&b, "#apps tr[data-app=dash]").await;
        assert!(row.contains("v3") && row.contains("up"), "{row}");
        shot(&b, "apps").await;

        // A phone-sized window: no sideways scrolling on the main pages.
        b.set_window_size(390, 844).await.unwrap();
        for (path, name) in [
            ("/", "apps-phone"),
            ("/apps/dash", "app-phone"),
            ("/nodes", "nodes-phone"),
        ] {
            b.goto(&format!("{api}{path}")).await.unwrap();
            let fits = b
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                    vec![],
                )
                .await
                .unwrap();
            shot(&b, name).await;
            assert_eq!(
                fits,
                serde_json::json!(true),
                "{path} scrolls sideways on a phone"
            );
        }

        // Log out: the pages need a session again.
        b.set_window_size(1280, 1000).await.unwrap();
        submit(&b, "form.logout button").await;
        at(&b, "/login").await;
        b.goto(&app_url).await.unwrap();
        at(&b, "/login").await;
    });
    stop.store(true, Ordering::SeqCst);
    traffic.join().unwrap();

    // A member who collaborates on one app only.
    api_post(
        &p,
        "/v1/users",
        serde_json::json!({"name": "ds4-ann", "role": "member", "password": "ds4-ann-pass"}),
    );
    api_post(&p, "/v1/apps", serde_json::json!({"name": "ds4-mine"}));
    api_post(
        &p,
        "/v1/apps/ds4-mine/collaborators",
        serde_json::json!({"user": "ds4-ann"}),
    );
    rt.block_on(async {
        fill(&b, "#user", "ds4-ann").await;
        fill(&b, "#password", "ds4-ann-pass").await;
        submit(&b, "#login-form button[type=submit]").await;
        at(&b, "/").await;
        let apps = text(&b, "#apps").await;
        assert!(apps.contains("ds4-mine"), "{apps}");
        assert!(
            !apps.contains("dash"),
            "a member sees only their apps: {apps}"
        );
        assert!(
            b.find(Locator::Css("#nav-nodes")).await.is_err(),
            "no Nodes link for members"
        );
        shot(&b, "member-apps").await;

        // Another app's page (and its data) is a 404, as if it did not exist.
        b.goto(&app_url).await.unwrap();
        let title = b.title().await.unwrap();
        assert!(title.starts_with("App not found"), "{title}");
        // The error page keeps the layout: the user, the way back, the logout.
        assert!(text(&b, "form.logout .who").await.contains("ds4-ann"));
        assert!(b.find(Locator::Css("#nav-nodes")).await.is_err());
        shot(&b, "member-refused").await;
        // So does a path nothing answers.
        b.goto(&format!("{api}/apps/ds4-mine/no-such-page"))
            .await
            .unwrap();
        assert!(b.title().await.unwrap().starts_with("Not found"));
        assert!(text(&b, "#error-message")
            .await
            .contains("There is no page at /apps/ds4-mine/no-such-page"));
        assert!(b.find(Locator::Css("form.logout")).await.is_ok());
        b.goto(&format!("{api}/apps/dash/stats.json"))
            .await
            .unwrap();
        assert!(b.source().await.unwrap().contains("App not found"));
        // The nodes page is for admins.
        b.goto(&format!("{api}/nodes")).await.unwrap();
        let title = b.title().await.unwrap();
        assert!(title.starts_with("Not allowed"), "{title}");

        // Rename their app: its page moves to the new name.
        b.goto(&format!("{api}/apps/ds4-mine")).await.unwrap();
        fill(&b, "#rename-name", "ds4-renamed").await;
        submit(&b, "#rename-form button[type=submit]").await;
        at(&b, "/apps/ds4-renamed").await;
        assert!(b.title().await.unwrap().starts_with("ds4-renamed"));

        // Destroy it: a wrong confirmation is refused next to the field, the name works.
        fill(&b, "#destroy-confirm", "ds4-mine").await;
        submit(&b, "#destroy-form button[type=submit]").await;
        let err = text(&b, "#destroy-form .field #destroy-error").await;
        assert!(err.contains("ds4-renamed"), "{err:?}");
        shot(&b, "destroy-error").await;
        fill(&b, "#destroy-confirm", "ds4-renamed").await;
        submit(&b, "#destroy-form button[type=submit]").await;
        at(&b, "/").await;
        assert!(b.source().await.unwrap().contains("No apps yet"));
        b.goto(&format!("{api}/apps/ds4-renamed")).await.unwrap();
        assert!(b.title().await.unwrap().starts_with("App not found"));
        b.goto(&format!("{api}/")).await.unwrap();
        submit(&b, "form.logout button").await;
        at(&b, "/login").await;
    });
    rt.block_on(b.close()).unwrap();
}
