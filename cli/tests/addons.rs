//! `paas addons` and `addons:info` against a real in-process controller (see `support`):
//! the SIZE of an add-on's data comes from its node's heartbeat, `-` while it is unknown,
//! and another member never sees it.

mod support;

use support::{Real, Sandbox};

/// A heartbeat of `node` that measured the add-on volume `volume`, sent as a node would.
fn heartbeat(real: &Real, node: &str, volume: &str, bytes: u64) {
    let resp = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/nodes/heartbeat", real.url))
        .bearer_auth(&real.admin)
        .json(&serde_json::json!({
            "name": node,
            "url": "http://127.0.0.1:9",
            "memory_bytes": 1u64 << 30,
            "volumes": [{
                "name": volume,
                "used_bytes": bytes,
                "measured_at": "2026-12-07T10:00:00Z",
            }],
        }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
}

#[test]
fn addons_show_the_size_of_their_data_once_measured_and_only_to_their_apps() {
    let real = Real::start();
    let s = Sandbox::new();
    for args in [
        &["apps:create", "shop"][..],
        &["addons:create", "postgresql", "-a", "shop"],
    ] {
        let run = s.as_user(&real, &real.admin, args);
        assert_eq!(run.code, 0, "{run:?}");
    }
    let mut addon = real
        .block_on(real.c.store.addons())
        .unwrap()
        .pop()
        .expect("the add-on");

    let run = s.as_user(&real, &real.admin, &["addons", "-a", "shop"]);
    assert_eq!(run.code, 0, "{run:?}");
    let header = run.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains("NODE") && header.contains("SIZE") && header.contains("CREATED"),
        "{run:?}"
    );
    let row = run.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        row.split_whitespace().nth(5) == Some("-"),
        "unknown before a measurement, not 0: {run:?}"
    );

    addon.node = Some("n1".into());
    real.block_on(real.c.store.update_addon_run(&addon))
        .unwrap();
    heartbeat(&real, "n1", &format!("addon-{}", addon.id), 8_912_896);

    let run = s.as_user(&real, &real.admin, &["addons", "-a", "shop"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("8.5 MB"), "{run:?}");
    let run = s.as_user(
        &real,
        &real.admin,
        &["addons:info", &addon.name, "-a", "shop"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("Data size:   8.5 MB (measured 2026-12-07T10:00:00Z)"),
        "{run:?}"
    );
    let run = s.as_user(&real, &real.admin, &["addons", "-a", "shop", "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json[0]["data_bytes"], 8_912_896, "{json}");

    // A member of another app sees neither the add-on nor its size.
    let mallory = real.member("mallory");
    let run = s.as_user(&real, &mallory, &["apps:create", "evil"]);
    assert_eq!(run.code, 0, "{run:?}");
    for args in [
        &["addons", "-a", "shop"][..],
        &["addons:info", &addon.name, "-a", "shop"],
        &["addons:info", &addon.name, "-a", "evil"],
    ] {
        let run = s.as_user(&real, &mallory, args);
        assert_ne!(run.code, 0, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("no app named shop") || run.stderr.contains("no add-on named"),
            "{run:?}"
        );
        assert!(!run.stdout.contains("8.5 MB"), "{run:?}");
    }

    // Its node is down: unknown again.
    real.block_on(
        real.c
            .store
            .upsert_node("n1", "http://127.0.0.1:9", 1 << 30, 0),
    )
    .unwrap();
    let run = s.as_user(&real, &real.admin, &["addons", "-a", "shop"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains("8.5 MB"), "{run:?}");
    let run = s.as_user(
        &real,
        &real.admin,
        &["addons:info", &addon.name, "-a", "shop"],
    );
    assert!(run.stdout.contains("Data size:   unknown"), "{run:?}");
}
