//! Layer and input unpacking with crafted tarballs: nothing may land outside the
//! destination, device nodes are refused, hardlinks stay inside, whiteouts become overlay
//! whiteouts (root only).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{gzip, need_root, TarBuilder};
use paas_node_agent::images::unpack::{unpack, unpack_file, Options};

fn layer() -> Options {
    Options { whiteouts: true }
}

/// A scratch dir with `dest/` to unpack into; escapes would land in its other children.
fn scratch() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a/b/dest");
    std::fs::create_dir_all(&dest).unwrap();
    (dir, dest)
}

#[test]
fn escaping_paths_are_skipped() {
    let (dir, dest) = scratch();
    let abs = format!("/tmp/paas-unpack-escape-{}", std::process::id());
    let tar = TarBuilder::new()
        .file("ok.txt", b"fine", 0o644)
        .file("../x", b"up one", 0o644)
        .file("../../../escaped", b"up three", 0o644)
        .file("sub/../../y", b"sneaky", 0o644)
        .file(&abs, b"absolute", 0o644)
        .file("./dot/ok2", b"fine too", 0o600)
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    assert_eq!(std::fs::read(dest.join("ok.txt")).unwrap(), b"fine");
    assert_eq!(std::fs::read(dest.join("dot/ok2")).unwrap(), b"fine too");
    assert_eq!(report.skipped.len(), 4, "{:?}", report.skipped);
    assert!(!dir.path().join("a/b/x").exists());
    assert!(!dir.path().join("escaped").exists());
    assert!(!dir.path().join("a/b/y").exists() && !dest.join("y").exists());
    assert!(!Path::new(&abs).exists());
    assert!(!dest.join(abs.trim_start_matches('/')).exists());
}

#[test]
fn symlinks_are_kept_but_never_followed() {
    let (dir, dest) = scratch();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let outside_s = outside.to_str().unwrap().to_string();
    let tar = TarBuilder::new()
        .symlink("evil", &outside_s)
        .file("evil/planted", b"through the link", 0o644)
        .symlink("rel", "../../..")
        .file("rel/planted2", b"through the relative link", 0o644)
        .symlink("bin/sh", "busybox")
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    // The links exist as links, pointing where the archive said.
    assert_eq!(std::fs::read_link(dest.join("evil")).unwrap(), outside);
    assert_eq!(
        std::fs::read_link(dest.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    // Nothing was written through them.
    assert!(!outside.join("planted").exists());
    assert!(!dir.path().join("planted2").exists());
    assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
    // A later file replaces a link rather than writing through it.
    let tar = TarBuilder::new()
        .file("evil", b"now a file", 0o644)
        .finish();
    unpack(&tar[..], &dest, layer()).unwrap();
    assert!(std::fs::symlink_metadata(dest.join("evil"))
        .unwrap()
        .is_file());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn hardlinks_must_point_inside() {
    let (dir, dest) = scratch();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"host file").unwrap();
    let tar = TarBuilder::new()
        .file("bin/real", b"content", 0o755)
        .hardlink("bin/alias", "bin/real")
        .hardlink("up", "../../../secret")
        .hardlink("abs", secret.to_str().unwrap())
        .hardlink("missing", "bin/nothing")
        .symlink("lnk", "/")
        .hardlink("through", "lnk/etc/passwd")
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    let real = std::fs::metadata(dest.join("bin/real")).unwrap();
    let alias = std::fs::metadata(dest.join("bin/alias")).unwrap();
    assert_eq!(real.ino(), alias.ino());
    for name in ["up", "abs", "missing", "through"] {
        assert!(
            std::fs::symlink_metadata(dest.join(name)).is_err(),
            "{name}"
        );
    }
    assert_eq!(report.skipped.len(), 4, "{:?}", report.skipped);
    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 1);
}

#[test]
fn device_nodes_are_refused() {
    let (_dir, dest) = scratch();
    let tar = TarBuilder::new()
        .char_device("dev/null")
        .file("dev/ok", b"x", 0o644)
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    assert!(std::fs::symlink_metadata(dest.join("dev/null")).is_err());
    assert!(dest.join("dev/ok").exists());
    assert_eq!(report.skipped.len(), 1);
    assert!(report.skipped[0].contains("device"), "{:?}", report.skipped);
}

#[test]
fn gzip_and_plain_are_detected_and_modes_kept() {
    let (dir, dest) = scratch();
    let tar = TarBuilder::new()
        .dir_mode("ro/", 0o555)
        .file(
            "ro/inside",
            b"written before the dir became read-only",
            0o640,
        )
        .file("run.sh", b"#!/bin/sh\n", 0o755)
        .finish();
    let plain = dir.path().join("layer.tar");
    std::fs::write(&plain, &tar).unwrap();
    unpack_file(&plain, &dest, Options::default()).unwrap();
    let gz = dir.path().join("layer.tar.gz");
    std::fs::write(&gz, gzip(&tar)).unwrap();
    let dest2 = dir.path().join("dest2");
    std::fs::create_dir(&dest2).unwrap();
    unpack_file(&gz, &dest2, Options::default()).unwrap();
    for d in [&dest, &dest2] {
        let mode = std::fs::metadata(d.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        let mode = std::fs::metadata(d.join("ro/inside"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        // The read-only mode was applied after the dir was filled.
        let mode = std::fs::metadata(d.join("ro"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o555);
    }
}

#[test]
fn inputs_keep_wh_files_as_files() {
    let (_dir, dest) = scratch();
    let tar = TarBuilder::new()
        .file("dir/.wh.keep", b"data", 0o644)
        .finish();
    unpack(&tar[..], &dest, Options { whiteouts: false }).unwrap();
    assert_eq!(std::fs::read(dest.join("dir/.wh.keep")).unwrap(), b"data");
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !need_root("whiteouts_become_overlay_whiteouts") {
        return;
    }
    let (_dir, dest) = scratch();
    let tar = TarBuilder::new()
        .dir("etc/")
        .file("etc/.wh.motd", b"", 0o644)
        .dir("var/cache/")
        .file("var/cache/.wh..wh..opq", b"", 0o644)
        .file("var/cache/new", b"only this", 0o644)
        .file(".wh.gone", b"", 0o644)
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    for path in ["etc/motd", "gone"] {
        let meta = std::fs::symlink_metadata(dest.join(path)).unwrap();
        assert!(meta.file_type().is_char_device(), "{path}");
        assert_eq!(meta.rdev(), 0, "{path} must be device 0/0");
    }
    assert!(!dest.join("etc/.wh.motd").exists());
    assert!(!dest.join("var/cache/.wh..wh..opq").exists());
    assert_eq!(
        opaque_xattr(&dest.join("var/cache")).as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(opaque_xattr(&dest.join("etc")), None);
    assert!(dest.join("var/cache/new").exists());
}

fn opaque_xattr(path: &Path) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: valid NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (n >= 0).then(|| buf[..n as usize].to_vec())
}
