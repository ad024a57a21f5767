//! Property test of layer and input unpacking (part of the bounded fuzz run, tests/fuzz.sh):
//! tarballs of random entries built from hostile pieces (`..`, absolute paths, symlinks and
//! hardlinks pointing up or out, whiteouts, devices, FIFOs), whole or with random bytes
//! flipped, never panic the unpacker and never touch anything outside the destination:
//! three levels of parents with a sentinel file each stay exactly as they were.
//! `PROPTEST_CASES` sets the number of cases (default 256).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::TarBuilder;
use paas_node_agent::images::unpack::{unpack, Options};
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const PIECES: &[&str] = &[
    "a",
    "b",
    "keep",
    "root",
    "..",
    ".",
    "",
    ".wh.a",
    ".wh.keep",
    ".wh..wh..opq",
    ".wh..",
    "etc",
    "l1",
    "l2",
];
const TARGETS: &[&str] = &[
    "..", "../keep", "../..", "../../..", "/", "/etc", "a", "b/..", "../../l1", ".", "keep",
];

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
    Fifo,
    Char,
}

fn path() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(prop::sample::select(PIECES), 1..4),
    )
        .prop_map(|(abs, parts)| {
            let p = parts.join("/");
            if abs {
                format!("/{p}")
            } else {
                p
            }
        })
}

fn entry() -> impl Strategy<Value = (String, Kind)> {
    let target = prop::sample::select(TARGETS).prop_map(str::to_string);
    let kind = prop_oneof![
        Just(Kind::Dir),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Kind::File),
        target.clone().prop_map(Kind::Symlink),
        target.prop_map(Kind::Hardlink),
        Just(Kind::Fifo),
        Just(Kind::Char),
    ];
    (path(), kind)
}

fn tarball(entries: &[(String, Kind)]) -> Vec<u8> {
    let mut t = TarBuilder::new();
    for (path, kind) in entries {
        match kind {
            Kind::Dir => t.dir(path),
            Kind::File(data) => t.file(path, data, 0o644),
            Kind::Symlink(to) => t.symlink(path, to),
            Kind::Hardlink(to) => t.hardlink(path, to),
            Kind::Fifo => t.entry(tar::EntryType::Fifo, path, b"", 0o644),
            Kind::Char => t.char_device(path),
        };
    }
    t.finish()
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Unpacks `tar` into base/l1/l2/root and checks base, l1 and l2 are untouched.
fn check(tar: &[u8], whiteouts: bool) {
    let base = tempfile::tempdir().unwrap();
    let l1 = base.path().join("l1");
    let l2 = l1.join("l2");
    let root = l2.join("root");
    std::fs::create_dir_all(&root).unwrap();
    for dir in [base.path(), &l1, &l2] {
        std::fs::write(dir.join("keep"), b"sentinel").unwrap();
    }
    let opts = Options {
        whiteouts,
        max_bytes: 1 << 20,
        max_entries: 1000,
    };
    // Ok or a clean error: either way no panic and nothing outside `root`.
    let _ = unpack(tar, &root, opts);
    for (dir, expected) in [
        (base.path(), ["keep", "l1"]),
        (l1.as_path(), ["keep", "l2"]),
        (l2.as_path(), ["keep", "root"]),
    ] {
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(names(dir), expected, "{}", dir.display());
        let keep = dir.join("keep");
        let meta = std::fs::symlink_metadata(&keep).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{} was replaced",
            keep.display()
        );
        assert_eq!(std::fs::read(&keep).unwrap(), b"sentinel");
    }
    assert!(std::fs::symlink_metadata(&root).unwrap().is_dir());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn ac4_random_hostile_tarballs_stay_inside(
        entries in prop::collection::vec(entry(), 1..12),
        whiteouts in any::<bool>(),
    ) {
        check(&tarball(&entries), whiteouts);
    }

    #[test]
    fn ac4_corrupted_tarballs_fail_cleanly(
        entries in prop::collection::vec(entry(), 1..6),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut tar = tarball(&entries);
        for (i, b) in flips {
            let at = i.index(tar.len());
            tar[at] ^= b | 1;
        }
        check(&tar, true);
    }
}
