//! Validation of a [`ContainerSpec`] before anything is touched: every rule here turns
//! into `Error::InvalidSpec` with a message that says which field is wrong and why.

use std::path::Path;

use crate::{ContainerSpec, Error, Network, Result};

/// The PATH used to resolve `args[0]` when `env` has none (the agent uses the same).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Container paths that the runtime mounts itself; user bind mounts may not go there.
const RESERVED: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Longest overlayfs mount option string the kernel takes (one page, with the NUL).
pub(crate) const MAX_MOUNT_DATA: usize = 4095;

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidSpec(msg.into())
}

/// Checks a container id: `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`.
pub fn validate_id(id: &str) -> Result<()> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || id.len() > 64 {
        return Err(invalid(format!(
            "id {id:?} must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}"
        )));
    }
    Ok(())
}

fn no_nul(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(invalid(format!("{field} {value:?} contains a NUL byte")));
    }
    Ok(())
}

/// An absolute container path without `..` components or NUL bytes.
fn container_path(field: &str, value: &str) -> Result<()> {
    no_nul(field, value)?;
    if !value.starts_with('/') {
        return Err(invalid(format!(
            "{field} {value:?} must be an absolute path"
        )));
    }
    if value.split('/').any(|c| c == "..") {
        return Err(invalid(format!(
            "{field} {value:?} must not contain \"..\""
        )));
    }
    Ok(())
}

/// [`container_path`] for other modules.
pub(crate) fn check_container_path(field: &str, value: &str) -> Result<()> {
    container_path(field, value)?;
    let norm = normalize(value);
    if norm == "/" {
        return Err(invalid(format!("{field} cannot be the root \"/\"")));
    }
    Ok(())
}

/// `/a//b/` → `/a/b`; `/` stays `/`. Expects a path that passed [`container_path`].
pub(crate) fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Whether container path `path` is `base` or below it (both normalized).
pub(crate) fn is_under(path: &str, base: &str) -> bool {
    base == "/"
        || path == base
        || (path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/'))
}

fn host_dir(field: &str, path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(invalid(format!(
            "{field} {} must be an absolute path",
            path.display()
        )));
    }
    if !path.is_dir() {
        return Err(invalid(format!(
            "{field} {} is not a directory on the host",
            path.display()
        )));
    }
    Ok(())
}

/// Checks everything in a spec that can be checked without side effects.
pub fn validate_spec(spec: &ContainerSpec) -> Result<()> {
    validate_id(&spec.id)?;
    if spec.layers.is_empty() {
        return Err(invalid(
            "layers is empty: a container needs at least one layer",
        ));
    }
    for layer in &spec.layers {
        host_dir("layer", layer)?;
        let s = layer.to_string_lossy();
        if s.contains([':', ',', '\\', '\n']) {
            return Err(invalid(format!(
                "layer path {s} contains ':', ',', '\\' or a newline, which overlayfs \
                 options cannot carry"
            )));
        }
    }
    if spec.args.is_empty() || spec.args[0].is_empty() {
        return Err(invalid("args is empty: nothing to run"));
    }
    for arg in &spec.args {
        no_nul("argument", arg)?;
    }
    for entry in &spec.env {
        no_nul("env entry", entry)?;
        if !entry.contains('=') || entry.starts_with('=') {
            return Err(invalid(format!("env entry {entry:?} is not KEY=VALUE")));
        }
    }
    container_path("cwd", &spec.cwd)?;
    let hostname_ok = spec.hostname.len() <= 64
        && spec
            .hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !hostname_ok {
        return Err(invalid(format!(
            "hostname {:?} must be at most 64 characters of [A-Za-z0-9._-]",
            spec.hostname
        )));
    }
    for m in &spec.mounts {
        container_path("mount destination", &m.destination)?;
        let dest = normalize(&m.destination);
        if dest == "/" {
            return Err(invalid("a bind mount cannot replace the root \"/\""));
        }
        if let Some(r) = RESERVED.iter().find(|r| is_under(&dest, r)) {
            return Err(invalid(format!(
                "mount destination {dest:?} is under {r}, which the runtime mounts itself"
            )));
        }
        if !m.source.is_absolute() || !m.source.exists() {
            return Err(invalid(format!(
                "mount source {} must be an absolute path that exists on the host",
                m.source.display()
            )));
        }
    }
    if let Network::Join(path) = &spec.network {
        if !path.exists() {
            return Err(invalid(format!(
                "network namespace {} does not exist (create it before the container)",
                path.display()
            )));
        }
    }
    for (field, path) in [("stdout", &spec.stdout), ("stderr", &spec.stderr)] {
        if path.as_os_str().is_empty() {
            return Err(invalid(format!("{field} path is empty")));
        }
    }
    if spec.resources.memory_bytes == Some(0) || spec.resources.pids_max == Some(0) {
        return Err(invalid(
            "memory and pids limits must be above 0 (None = no limit)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BindMount, Resources};
    use std::path::PathBuf;

    fn spec(dir: &Path) -> ContainerSpec {
        ContainerSpec {
            id: "c1".into(),
            layers: vec![dir.to_owned()],
            args: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            hostname: "box".into(),
            user: None,
            mounts: vec![],
            network: Network::None,
            resources: Resources::default(),
            stdout: dir.join("out"),
            stderr: dir.join("out"),
        }
    }

    fn err_of(s: &ContainerSpec) -> String {
        match validate_spec(s) {
            Err(Error::InvalidSpec(m)) => m,
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn ids() {
        for ok in ["a", "A-1", "x.y_z", &"a".repeat(64)] {
            validate_id(ok).unwrap();
        }
        for bad in ["", "-a", ".a", "a/b", "a b", &"a".repeat(65), "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_good_spec_passes_and_bad_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = spec(dir.path());
        validate_spec(&good).unwrap();

        let mut s = good.clone();
        s.layers.clear();
        assert!(err_of(&s).contains("layers is empty"));
        s = good.clone();
        s.layers = vec![dir.path().join("nope")];
        assert!(err_of(&s).contains("not a directory"));
        s = good.clone();
        s.args.clear();
        assert!(err_of(&s).contains("nothing to run"));
        s = good.clone();
        s.env.push("NOVALUE".into());
        assert!(err_of(&s).contains("KEY=VALUE"));
        s = good.clone();
        s.cwd = "rel".into();
        assert!(err_of(&s).contains("absolute"));
        s = good.clone();
        s.cwd = "/a/../b".into();
        assert!(err_of(&s).contains(".."));
        s = good.clone();
        s.hostname = "a b".into();
        assert!(err_of(&s).contains("hostname"));
        s = good.clone();
        s.network = Network::Join(PathBuf::from("/run/netns/does-not-exist-xyz"));
        assert!(err_of(&s).contains("network namespace"));
        s = good.clone();
        s.resources.memory_bytes = Some(0);
        assert!(err_of(&s).contains("above 0"));
    }

    #[test]
    fn mounts_must_not_hit_reserved_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path());
        let mount = |dest: &str| BindMount {
            source: dir.path().to_owned(),
            destination: dest.into(),
            readonly: false,
        };
        s.mounts = vec![mount("/app")];
        validate_spec(&s).unwrap();
        s.mounts = vec![mount("/proc/x")];
        assert!(err_of(&s).contains("under /proc"));
        s.mounts = vec![mount("//dev")];
        assert!(err_of(&s).contains("under /dev"));
        s.mounts = vec![mount("/")];
        assert!(err_of(&s).contains("root"));
        s.mounts = vec![mount("/system")];
        validate_spec(&s).unwrap();
        s.mounts = vec![BindMount {
            source: dir.path().join("missing"),
            destination: "/x".into(),
            readonly: true,
        }];
        assert!(err_of(&s).contains("exists on the host"));
    }

    #[test]
    fn path_helpers() {
        assert_eq!(normalize("/a//b/./c/"), "/a/b/c");
        assert_eq!(normalize("/"), "/");
        assert!(is_under("/dev/shm", "/dev"));
        assert!(is_under("/dev", "/dev"));
        assert!(!is_under("/devices", "/dev"));
        assert!(is_under("/x", "/"));
    }
}
