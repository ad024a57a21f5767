//! Layer and input unpacking with crafted tarballs: nothing may land outside the
//! destination, device nodes are refused, hardlinks stay inside, whiteouts become overlay
//! whiteouts (root only).

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{gzip, need_root, TarBuilder};
use paas_node_agent::images::unpack::{unpack, unpack_file, Options, UnpackError};

fn layer() -> Options {
    Options {
        whiteouts: true,
        ..Options::default()
    }
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
fn gzip_zstd_and_plain_are_detected_and_modes_kept() {
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
    // An OCI tar+zstd layer.
    let zst = dir.path().join("layer.tar.zst");
    std::fs::write(&zst, zstd::encode_all(&tar[..], 3).unwrap()).unwrap();
    let dest3 = dir.path().join("dest3");
    std::fs::create_dir(&dest3).unwrap();
    unpack_file(&zst, &dest3, Options::default()).unwrap();
    for d in [&dest, &dest2, &dest3] {
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
    unpack(&tar[..], &dest, Options::default()).unwrap();
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

#[test]
fn whiteouts_that_name_no_file_are_skipped() {
    // `.wh...` once meant "whiteout `..`": the unpacker removed the entry's parent's parent
    // (here: the directory holding the destination) before making the whiteout.
    let (dir, dest) = scratch();
    std::fs::write(dir.path().join("a/b/sibling"), b"host data").unwrap();
    let tar = TarBuilder::new()
        .file("keep/file", b"x", 0o644)
        .file("keep/.wh..", b"", 0o644)
        .file("keep/.wh...", b"", 0o644)
        .file("keep/.wh.", b"", 0o644)
        .file(".wh...", b"", 0o644)
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    assert_eq!(report.skipped.len(), 4, "{:?}", report.skipped);
    assert!(report
        .skipped
        .iter()
        .all(|s| s.contains("must name a file")));
    assert_eq!(
        std::fs::read(dir.path().join("a/b/sibling")).unwrap(),
        b"host data"
    );
    assert_eq!(std::fs::read(dest.join("keep/file")).unwrap(), b"x");
}

#[test]
fn whiteout_under_a_symlink_is_skipped() {
    let (dir, dest) = scratch();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"host data").unwrap();
    let tar = TarBuilder::new()
        .symlink("lnk", outside.to_str().unwrap())
        .file("lnk/.wh.victim", b"", 0o644)
        .file("lnk/.wh..wh..opq", b"", 0o644)
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"host data");
    assert_eq!(opaque_xattr(&outside), None);
}

#[test]
fn directory_mode_is_not_applied_through_a_later_symlink() {
    // A dir entry queues its mode for the end; a later symlink of the same name must not
    // turn that chmod onto the link's (host) target.
    let (dir, dest) = scratch();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
    let tar = TarBuilder::new()
        .dir_mode("d/", 0o777)
        .symlink("d", outside.to_str().unwrap())
        .finish();
    unpack(&tar[..], &dest, layer()).unwrap();
    assert!(std::fs::symlink_metadata(dest.join("d"))
        .unwrap()
        .is_symlink());
    let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o700);
}

#[test]
fn set_id_bits_are_stripped_and_sticky_kept() {
    let (_dir, dest) = scratch();
    let tar = TarBuilder::new()
        .file("suid", b"#!/bin/sh\n", 0o4755)
        .file("sgid", b"#!/bin/sh\n", 0o2711)
        .dir_mode("tmp/", 0o1777)
        .finish();
    unpack(&tar[..], &dest, layer()).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(dest.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("suid"), 0o755);
    assert_eq!(mode("sgid"), 0o711);
    assert_eq!(mode("tmp"), 0o1777);
}

#[test]
fn fifos_and_block_devices_are_refused() {
    let (_dir, dest) = scratch();
    let tar = TarBuilder::new()
        .entry(tar::EntryType::Fifo, "run/pipe", b"", 0o666)
        .entry(tar::EntryType::Block, "dev/sda", b"", 0o660)
        .file("ok", b"x", 0o644)
        .finish();
    let report = unpack(&tar[..], &dest, layer()).unwrap();
    assert!(std::fs::symlink_metadata(dest.join("run/pipe")).is_err());
    assert!(std::fs::symlink_metadata(dest.join("dev/sda")).is_err());
    assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
    assert!(dest.join("ok").exists());
}

#[test]
fn archives_beyond_the_size_cap_are_refused_before_writing() {
    let (_dir, dest) = scratch();
    let small = Options {
        max_bytes: 1000,
        ..layer()
    };
    let tar = TarBuilder::new()
        .file("a", &[1; 600], 0o644)
        .file("b", &[2; 600], 0o644)
        .finish();
    let err = unpack(&tar[..], &dest, small).unwrap_err();
    assert!(matches!(err, UnpackError::TooBig { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("too big") && msg.contains("1000 bytes") && msg.contains('b'),
        "{msg}"
    );
    assert!(dest.join("a").exists());
    assert!(
        !dest.join("b").exists(),
        "the entry over the cap is not written"
    );

    // A gzip bomb: 16 MiB of zeros in a few KiB; the cap stops it, the file is not made.
    let (dir, dest) = scratch();
    let tar = TarBuilder::new()
        .file("bomb", &vec![0; 16 << 20], 0o644)
        .finish();
    let gz = dir.path().join("bomb.tar.gz");
    std::fs::write(&gz, gzip(&tar)).unwrap();
    assert!(std::fs::metadata(&gz).unwrap().len() < 100_000);
    let opts = Options {
        max_bytes: 1 << 20,
        ..layer()
    };
    let err = unpack_file(&gz, &dest, opts).unwrap_err();
    assert!(matches!(err, UnpackError::TooBig { .. }), "{err}");
    assert!(!dest.join("bomb").exists());
}

#[test]
fn archives_with_too_many_entries_are_refused() {
    let (_dir, dest) = scratch();
    let mut b = TarBuilder::new();
    for i in 0..11 {
        b.file(&format!("f{i}"), b"", 0o644);
    }
    let opts = Options {
        max_entries: 10,
        ..layer()
    };
    let err = unpack(&b.finish()[..], &dest, opts).unwrap_err();
    assert!(err.to_string().contains("10 entries"), "{err}");
}
