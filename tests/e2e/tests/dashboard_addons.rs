//! Journey: an app's add-ons in the dashboard in a real headless Chromium (see
//! `dashboard.rs` for the rest of the dashboard and `browser_common/` for the helpers),
//! against a standalone paas with the add-on images. Screenshots go to
//! `target/screenshots/` (CI keeps them).
//!
//! Without chromium/chromedriver the test skips, except under `CI=true`, where it fails.

mod browser_common;

use std::time::Duration;

use browser_common::{at, browser, eventually, fill, require_browser, shot, submit, text, Driver};
use fantoccini::Locator;
use paas_e2e::{require_root, Paas};

/// Journey: an app's add-ons in a real headless Chromium against a standalone paas with the
/// add-on images: create a Redis add-on from the service-and-plan select, see it become
/// available and its data's size measured, capture a backup and see it listed as completed
/// with its size, download it through its link (the session's cookie, the RDB's bytes), a
/// restore with a wrong confirmation refused by the form, one with the app's name typed
/// restoring it, the add-on attached to another app as `CACHE` and detached from it, and the
/// add-on destroyed with the app's name typed (its backup goes with it).
#[test]
fn addons_in_a_real_browser() {
    if !require_root() || !require_browser() {
        return;
    }
    let p = Paas::start_with_stacks(paas_e2e::addon_stacks_dir());
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let api = p.api.clone();
    let b = rt.block_on(browser(&driver, profile.path()));
    let app_url = format!("{api}/apps/cart");
    rt.block_on(async {
        b.goto(&format!("{api}/login")).await.unwrap();
        fill(&b, "#user", "admin").await;
        fill(&b, "#password", &p.token).await;
        submit(&b, "#login-form button[type=submit]").await;
        at(&b, "/").await;
        fill(&b, "#new-app-name", "cart").await;
        submit(&b, "#create-app button").await;
        at(&b, "/apps/cart").await;
        assert!(b.source().await.unwrap().contains("No add-ons."));

        // Create: Redis, its smallest plan, from the one select.
        b.find(Locator::Css("#addon-plan"))
            .await
            .unwrap()
            .select_by_value("redis:mini")
            .await
            .unwrap();
        submit(&b, "#addon-form button[type=submit]").await;
        at(&b, "/apps/cart").await;
        eventually(
            &b,
            &app_url,
            "the add-on available",
            Duration::from_secs(180),
            |s| s.contains("data-state=\"available\""),
        )
        .await;
        let row = text(&b, "#addon-list tbody tr").await;
        assert!(
            row.contains("redis") && row.contains("mini") && row.contains("REDIS_URL"),
            "{row}"
        );

        // Capture a backup: listed, then completed with a size.
        submit(&b, "#addon-list form.addon-capture button").await;
        at(&b, "/apps/cart").await;
        eventually(
            &b,
            &app_url,
            "the backup completed",
            Duration::from_secs(60),
            |s| s.contains("data-backup=") && s.contains("data-state=\"completed\""),
        )
        .await;
        let backup = text(&b, "#backup-list tbody tr").await;
        // A size, not the dash a running or failed backup shows.
        assert!(
            backup.contains("completed") && !backup.contains('–'),
            "{backup}"
        );
        // The add-on's data: measured by its node's agent, a size and not the dash.
        eventually(
            &b,
            &app_url,
            "the add-on's size",
            Duration::from_secs(60),
            |s| s.contains("class=\"addon-size\"") && !s.contains("class=\"addon-size\">–<"),
        )
        .await;
        b.execute(
            "document.getElementById('addons').scrollIntoView();",
            vec![],
        )
        .await
        .unwrap();
        shot(&b, "addons").await;

        // Download: the link serves the snapshot's bytes with the session's cookie.
        let link = b
            .find(Locator::Css("#backup-list a.backup-download"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .expect("a download link");
        let got = b
            .execute(
                "var x = new XMLHttpRequest(); x.open('GET', arguments[0], false); \
                 x.overrideMimeType('text/plain; charset=x-user-defined'); x.send(); \
                 return [x.status, x.responseText.length, x.responseText.slice(0, 5), \
                 x.getResponseHeader('Content-Disposition')];",
                vec![serde_json::json!(link)],
            )
            .await
            .unwrap();
        assert_eq!(got[0], 200, "{got}");
        assert!(got[1].as_u64().unwrap() > 5, "{got}");
        assert_eq!(got[2], "REDIS", "an RDB file: {got}");
        assert!(got[3].as_str().unwrap().contains(".rdb"), "{got}");

        // A wrong confirmation: refused above the list, nothing restored.
        fill(
            &b,
            "#backup-list form.backup-restore input[name=confirm]",
            "carts",
        )
        .await;
        submit(&b, "#backup-list form.backup-restore button").await;
        let err = text(&b, "#addon-error").await;
        assert!(err.contains("type the app's name, cart"), "{err:?}");
        // The right one restores it (Redis restarts in its job) and comes back to the page.
        fill(
            &b,
            "#backup-list form.backup-restore input[name=confirm]",
            "cart",
        )
        .await;
        submit(&b, "#backup-list form.backup-restore button").await;
        at(&b, "/apps/cart").await;
        assert!(
            text(&b, "#addon-error").await.is_empty(),
            "{}",
            text(&b, "#addon-error").await
        );

        // Attach it to another app as CACHE, then detach it there.
        let addon = b
            .find(Locator::Css("#addon-list tbody tr"))
            .await
            .unwrap()
            .attr("data-addon")
            .await
            .unwrap()
            .expect("the add-on's name");
        b.goto(&format!("{api}/")).await.unwrap();
        fill(&b, "#new-app-name", "reports").await;
        submit(&b, "#create-app button").await;
        at(&b, "/apps/reports").await;
        fill(&b, "#attach-addon", &addon).await;
        fill(&b, "#attach-as", "cache").await;
        submit(&b, "#addon-attach-form button[type=submit]").await;
        at(&b, "/apps/reports").await;
        let row = text(&b, "#addon-list tbody tr").await;
        assert!(
            row.contains(&addon) && row.contains("of cart") && row.contains("CACHE_URL"),
            "{row} {}",
            text(&b, "#addon-error").await
        );
        submit(&b, "#addon-list form.addon-detach button").await;
        at(&b, "/apps/reports").await;
        assert!(b.source().await.unwrap().contains("No add-ons."));
        b.goto(&app_url).await.unwrap();

        // Destroy: a wrong name is refused; the app's name removes it and its backup.
        fill(
            &b,
            "#addon-list form.addon-destroy input[name=confirm]",
            "nope",
        )
        .await;
        submit(&b, "#addon-list form.addon-destroy button").await;
        assert!(
            text(&b, "#addon-error").await.contains("--confirm cart"),
            "{}",
            text(&b, "#addon-error").await
        );
        fill(
            &b,
            "#addon-list form.addon-destroy input[name=confirm]",
            "cart",
        )
        .await;
        submit(&b, "#addon-list form.addon-destroy button").await;
        at(&b, "/apps/cart").await;
        let src = b.source().await.unwrap();
        assert!(
            src.contains("No add-ons.") && !src.contains("data-backup="),
            "{src}"
        );
    });
    rt.block_on(b.close()).unwrap();
}
