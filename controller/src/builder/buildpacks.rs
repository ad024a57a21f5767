//! Which buildpacks a build runs, and the tarballs a build job unpacks: the built-in
//! buildpacks (embedded at compile time from the repository's `buildpacks/`, or read from
//! `--buildpacks-dir`), the build's third-party ones, and the app's config as an `ENV_DIR`
//! (one file per config var, named after it, holding its value).
//!
//! The list a build runs ([`choose`]), first found wins, as Heroku and Dokku read them:
//! 1. the `BUILDPACK_URL` config var (one buildpack; when it names heroku-buildpack-multi,
//!    the `.buildpacks` file is read instead, as that buildpack did);
//! 2. the app's list (`paas buildpacks:add/set`, `PUT /v1/apps/{app}/buildpacks`);
//! 3. a `.buildpacks` file at the root of the pushed commit (one buildpack a line; blank
//!    lines and `#` comments skipped);
//! 4. none: the first built-in buildpack whose `bin/detect` matches.
//!
//! A config var and a file in the repository can be written by any collaborator, so they
//! may name built-in buildpacks and git URLs only; what is read from the controller's disk
//! (`file://`, a path) must come from the app's list, where only admins put it.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::custom::{self, CustomError};
use super::{BuildInput, Output};
use crate::state::Controller;

/// The config var that names the app's buildpack (Heroku's original way to set one).
pub const BUILDPACK_URL: &str = "BUILDPACK_URL";
/// The file in the repository listing buildpacks (heroku-buildpack-multi's, Dokku's).
pub const DOTFILE: &str = ".buildpacks";
/// The most buildpacks one build runs.
pub const MAX_BUILDPACKS: usize = 16;
/// The most of `.buildpacks` read.
const MAX_DOTFILE_BYTES: u64 = 64 * 1024;

/// The buildpacks a build runs and where that list came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub from: String,
    pub specs: Vec<String>,
    /// Only built-in buildpacks and git URLs (not a path or `file://`) may be used.
    pub remote_only: bool,
}

/// The lines of a `.buildpacks` file that name buildpacks.
pub fn parse_dotfile(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// True for a URL of heroku-buildpack-multi, which only runs what `.buildpacks` lists.
fn is_multi(url: &str) -> bool {
    let path = url.split('#').next().unwrap_or(url).trim_end_matches('/');
    let last = path.rsplit('/').next().unwrap_or("");
    last.trim_end_matches(".git") == "heroku-buildpack-multi"
}

/// Chooses the list (see the module doc). `dotfile` is the text of `.buildpacks`, if the
/// commit has one. `None`: detection.
pub fn choose(
    config: &BTreeMap<String, String>,
    app_list: &[String],
    dotfile: Option<&str>,
) -> Option<Chosen> {
    let from_file = |from: String| {
        let specs = parse_dotfile(dotfile?);
        (!specs.is_empty()).then_some(Chosen {
            from,
            specs,
            remote_only: true,
        })
    };
    if let Some(url) = config.get(BUILDPACK_URL).map(|v| v.trim()) {
        if !url.is_empty() {
            if is_multi(url) {
                if let Some(chosen) = from_file(format!("{DOTFILE}, as {BUILDPACK_URL} says")) {
                    return Some(chosen);
                }
            } else {
                return Some(Chosen {
                    from: format!("the {BUILDPACK_URL} config var"),
                    specs: vec![url.to_string()],
                    remote_only: true,
                });
            }
        }
    }
    if !app_list.is_empty() {
        return Some(Chosen {
            from: "set with paas buildpacks:add".into(),
            specs: app_list.to_vec(),
            remote_only: false,
        });
    }
    from_file(format!("the {DOTFILE} file"))
}

/// Checks every buildpack of `chosen` can be used: a built-in name or a URL (paths and
/// `file://` only from the app's list), at most [`MAX_BUILDPACKS`].
pub fn check_chosen(chosen: &Chosen) -> Result<(), CustomError> {
    if chosen.specs.len() > MAX_BUILDPACKS {
        return Err(CustomError::TooMany {
            origin: chosen.from.clone(),
            count: chosen.specs.len(),
            max: MAX_BUILDPACKS,
        });
    }
    for spec in &chosen.specs {
        if custom::is_builtin(spec) {
            continue;
        }
        let source = custom::parse(spec)?;
        if chosen.remote_only && source.is_local() {
            return Err(CustomError::LocalNotAllowed {
                spec: spec.clone(),
                origin: chosen.from.clone(),
            });
        }
    }
    Ok(())
}

/// The text of `.buildpacks` at the root of a `git archive` tar, if there is one.
pub fn dotfile_in_source(tar_path: &Path) -> io::Result<Option<String>> {
    use std::io::Read as _;
    let file = std::fs::File::open(tar_path)?;
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries()? {
        let entry = entry?;
        let path = entry.path()?.to_path_buf();
        let name = path.strip_prefix("./").unwrap_or(&path);
        if name == Path::new(DOTFILE) && entry.header().entry_type().is_file() {
            let mut text = String::new();
            entry.take(MAX_DOTFILE_BYTES).read_to_string(&mut text)?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// Chooses the build's buildpacks and sets the build job up to run them: built-in ones by
/// name, third-party ones fetched now into `buildpacks.tar`, unpacked at
/// [`custom::MOUNT`]`/N`. Nothing to do when detection chooses.
pub async fn apply(
    c: &Controller,
    input: &BuildInput,
    config: &BTreeMap<String, String>,
    spec: &mut paas_api::JobSpec,
    out: &mut Output,
) -> Result<(), CustomError> {
    let build_dir = c.settings.build_dir(&input.id);
    let io = |spec: &str| {
        let spec = spec.to_string();
        move |source| CustomError::Io { spec, source }
    };
    let source_tar = build_dir.join("source.tar");
    let dotfile = tokio::task::spawn_blocking(move || dotfile_in_source(&source_tar))
        .await
        .map_err(|e| io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(io(DOTFILE))?;
    let app_list = c
        .store
        .app_buildpacks(&input.app)
        .await
        .map_err(|e| io("the app's buildpacks")(io::Error::other(e.to_string())))?;
    let Some(chosen) = choose(config, &app_list, dotfile.as_deref()) else {
        return Ok(());
    };
    check_chosen(&chosen)?;
    let staging = build_dir.join("buildpacks");
    let mut entries = Vec::new();
    for (i, bp) in chosen.specs.iter().enumerate() {
        if let Some(name) = custom::builtin_of(bp) {
            entries.push(name);
            continue;
        }
        out.line(format!(
            "-----> Fetching buildpack {}",
            custom::redacted(bp)
        ))
        .await;
        let n = (i + 1).to_string();
        custom::prepare_into(&c.settings.data_dir, bp, &staging.join(&n)).await?;
        entries.push(format!("{}/{n}", custom::MOUNT));
    }
    if staging.exists() {
        let tar_path = build_dir.join("buildpack.tar");
        let dir = staging.clone();
        tokio::task::spawn_blocking(move || std::fs::write(&tar_path, tar_dir(&dir)?))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io("the build's buildpacks"))?;
        let _ = tokio::fs::remove_dir_all(&staging).await;
        spec.inputs.push(paas_api::JobInput {
            url: format!(
                "{}/internal/builds/{}/buildpack.tar",
                c.settings.internal_url, input.id
            ),
            path: custom::MOUNT.into(),
            readonly: true,
        });
    }
    spec.env
        .insert("PAAS_BUILDPACKS".into(), entries.join("\n"));
    let names: Vec<String> = chosen.specs.iter().map(|s| custom::redacted(s)).collect();
    spec.env
        .insert("PAAS_BUILDPACK_NAMES".into(), names.join("\n"));
    spec.env.insert("PAAS_BUILDPACKS_FROM".into(), chosen.from);
    Ok(())
}

/// `buildpacks/` as built into this binary.
pub static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/buildpacks.tar"));

/// The built-in buildpacks an app may choose with `paas buildpacks:add`, in detection
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

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn buildpack_url_beats_the_apps_list_which_beats_the_dotfile() {
        let list = vec!["nodejs".to_string(), "python".to_string()];
        let file = "# assets first\nheroku/nodejs\n\n  https://h/bp.git#v2  \n";
        let url = vars(&[("BUILDPACK_URL", "https://h/one.git")]);
        let by_url = choose(&url, &list, Some(file)).unwrap();
        assert_eq!(by_url.specs, ["https://h/one.git"]);
        assert!(by_url.remote_only && by_url.from.contains("BUILDPACK_URL"));
        let by_list = choose(&vars(&[]), &list, Some(file)).unwrap();
        assert_eq!((by_list.specs, by_list.remote_only), (list.clone(), false));
        let by_file = choose(&vars(&[("BUILDPACK_URL", " ")]), &[], Some(file)).unwrap();
        assert_eq!(by_file.specs, ["heroku/nodejs", "https://h/bp.git#v2"]);
        assert!(by_file.remote_only && by_file.from.contains(".buildpacks"));
        assert_eq!(choose(&vars(&[]), &[], None), None);
        assert_eq!(choose(&vars(&[]), &[], Some("\n# nothing\n")), None);
        // heroku-buildpack-multi in BUILDPACK_URL means: read .buildpacks.
        let multi = vars(&[(
            "BUILDPACK_URL",
            "https://github.com/heroku/heroku-buildpack-multi.git",
        )]);
        let via_multi = choose(&multi, &list, Some(file)).unwrap();
        assert_eq!(via_multi.specs, by_file.specs);
        assert_eq!(choose(&multi, &list, None).unwrap().specs, list);
    }

    #[test]
    fn collaborator_written_lists_may_not_read_the_controllers_disk() {
        let chosen = |specs: &[&str], remote_only| Chosen {
            from: "the .buildpacks file".into(),
            specs: specs.iter().map(|s| s.to_string()).collect(),
            remote_only,
        };
        assert!(check_chosen(&chosen(&["heroku/go", "python", "https://h/x#v1"], true)).is_ok());
        for local in ["file:///srv/bp", "/srv/bp"] {
            let err = check_chosen(&chosen(&["nodejs", local], true)).unwrap_err();
            assert!(matches!(err, CustomError::LocalNotAllowed { .. }), "{err}");
            assert!(err.to_string().contains(".buildpacks"), "{err}");
            assert!(check_chosen(&chosen(&[local], false)).is_ok());
        }
        let err = check_chosen(&chosen(&["ftp://h/x"], true)).unwrap_err();
        assert!(matches!(err, CustomError::Unknown { .. }), "{err}");
        let many: Vec<&str> = std::iter::repeat_n("python", MAX_BUILDPACKS + 1).collect();
        let err = check_chosen(&chosen(&many, false)).unwrap_err();
        assert!(matches!(err, CustomError::TooMany { .. }), "{err}");
        assert_eq!(
            custom::builtin_of("heroku/nodejs").as_deref(),
            Some("nodejs")
        );
        assert_eq!(custom::builtin_of("heroku/ruby"), None);
    }

    #[test]
    fn the_dotfile_is_read_from_the_root_of_the_source_tar() {
        let dir = tempfile::tempdir().unwrap();
        let write = |files: &[(&str, &str)]| {
            let mut b = tar::Builder::new(Vec::new());
            for (path, text) in files {
                let mut h = tar::Header::new_gnu();
                h.set_size(text.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, path, text.as_bytes()).unwrap();
            }
            let p = dir.path().join("source.tar");
            std::fs::write(&p, b.into_inner().unwrap()).unwrap();
            p
        };
        let p = write(&[
            ("sub/.buildpacks", "no"),
            (".buildpacks", "nodejs\npython\n"),
        ]);
        assert_eq!(
            dotfile_in_source(&p).unwrap().as_deref(),
            Some("nodejs\npython\n")
        );
        let p = write(&[("Procfile", "web: x")]);
        assert_eq!(dotfile_in_source(&p).unwrap(), None);
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
