//! The tarballs a build job unpacks: the buildpacks (embedded at compile time from the
//! repository's `buildpacks/`, or read from `--buildpacks-dir`) and the app's config as an
//! `ENV_DIR` (one file per config var, named after it, holding its value).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// `buildpacks/` as built into this binary.
pub static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/buildpacks.tar"));

/// The built-in buildpacks an app may choose with `paas buildpacks:set`, in detection
/// order (`buildpacks/order`).
pub fn builtin_names() -> Vec<String> {
    include_str!("../../../buildpacks/order")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The tar of a buildpacks directory on disk.
pub fn tar_dir(dir: &Path) -> io::Result<Vec<u8>> {
    super::tar_dir::tar_dir(dir)
}

/// One file per config var (mode 0644), as Heroku's `ENV_DIR`.
pub fn env_tar(vars: &BTreeMap<String, String>) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (key, value) in vars {
        // Keys are validated when set ([A-Za-z_][A-Za-z0-9_]*); never let one be a path.
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(value.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, key, value.as_bytes())?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Vec<(String, u32, String)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mode = e.header().mode().unwrap();
                let mut text = String::new();
                if e.header().entry_type().is_file() {
                    std::io::Read::read_to_string(&mut e, &mut text).unwrap();
                }
                (path, mode, text)
            })
            .collect()
    }

    #[test]
    fn env_tar_has_one_file_per_var() {
        let vars = BTreeMap::from([
            ("A".to_string(), "1".to_string()),
            ("DATABASE_URL".to_string(), "postgres://x".to_string()),
        ]);
        let e = entries(&env_tar(&vars).unwrap());
        assert_eq!(
            e,
            [
                ("A".into(), 0o644, "1".into()),
                ("DATABASE_URL".into(), 0o644, "postgres://x".into())
            ]
        );
        assert!(entries(&env_tar(&BTreeMap::new()).unwrap()).is_empty());
    }

    #[test]
    fn tar_dir_is_sorted_and_keeps_the_executable_bit() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/bin")).unwrap();
        std::fs::write(dir.path().join("b/bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("b/bin/run"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::write(dir.path().join("a"), "x").unwrap();
        let e = entries(&tar_dir(dir.path()).unwrap());
        let names: Vec<_> = e.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/bin", "b/bin/run"]);
        assert_eq!(e[3].1 & 0o111, 0o111);
        assert_eq!(e[0].1 & 0o111, 0);
        assert!(entries(&tar_dir(&dir.path().join("missing")).unwrap()).is_empty());
    }

    #[test]
    fn the_embedded_buildpacks_include_the_builder_when_present() {
        let names: Vec<String> = entries(EMBEDDED).into_iter().map(|(p, _, _)| p).collect();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../buildpacks/bin/build");
        if repo.exists() {
            assert!(names.iter().any(|n| n == "bin/build"), "{names:?}");
        }
    }
}
