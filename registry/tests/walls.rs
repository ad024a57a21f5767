//! The wall around this crate (issue 20): the registry depends on neither the controller
//! nor the router, directly or through another crate. The compiler keeps the code honest
//! only while the manifest does; this test keeps the manifest honest.

use std::process::Command;

#[test]
fn the_registry_depends_on_neither_the_controller_nor_the_router() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "paas-registry",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.contains("paas-registry"),
        "unexpected cargo tree output:\n{tree}"
    );
    for forbidden in ["paas-controller", "paas-router"] {
        assert!(
            !tree
                .lines()
                .any(|l| l.starts_with(&format!("{forbidden} "))),
            "paas-registry depends on {forbidden}: the controller composes the registry, \
             never the other way round (see ARCHITECTURE.md)\n{tree}"
        );
    }
}
