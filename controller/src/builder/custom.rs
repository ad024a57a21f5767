//! Third-party classic buildpacks (`paas buildpacks:add -a APP URL|PATH`, a `.buildpacks`
//! file, `BUILDPACK_URL`), as Heroku's: a git URL (`https://`, `http://`, `git://`, or `file://` for
//! admins), optionally pinned with a `#ref` suffix (branch, tag or commit), or an absolute
//! local path on the controller (admins only: it ships that directory to the build).
//!
//! At every build the controller fetches it again (`git clone --depth 1`, or a copy of the
//! path) into `DATA/buildpacks/<hash of the spec>/` (replaced whole once the fetch
//! succeeded), checks that `bin/detect` and `bin/compile` exist, and copies it into the
//! build's tar of buildpacks, which the build job unpacks at [`MOUNT`];
//! `buildpacks/bin/build` then runs it exactly like a built-in one (Heroku classic API).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the build's third-party buildpacks are unpacked in the build container, one
/// directory each, named after its position in the list (`/buildpack/1`, …).
pub const MOUNT: &str = "/buildpack";
/// How long fetching a buildpack may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest buildpack spec accepted.
const MAX_SPEC_LEN: usize = 2048;

/// Why a third-party buildpack cannot be used. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CustomError {
    #[error(
        "{spec:?} is neither a built-in buildpack ({builtin}) nor a buildpack URL \
         (https://…, http://…, git://…, file://…, optionally ending in #REF) nor an absolute \
         path on the controller"
    )]
    Unknown { spec: String, builtin: String },
    #[error("only admins may set a buildpack from {what}: it is read from the controller's disk")]
    AdminOnly { what: &'static str },
    #[error(
        "fetching the buildpack {spec}: {detail}. Check the URL (and #ref), then run \
         `paas buildpacks:set` again"
    )]
    Fetch { spec: String, detail: String },
    #[error(
        "the buildpack {spec} has no executable {file}: a classic buildpack needs bin/detect, \
         bin/compile and (optionally) bin/release"
    )]
    NotABuildpack { spec: String, file: &'static str },
    #[error(
        "{spec} ({origin}) is read from the controller's disk, which only an admin may choose: \
         use a buildpack's git URL (https://…, #ref pins it) or a built-in name, or ask an \
         admin to run `paas buildpacks:add`"
    )]
    LocalNotAllowed { spec: String, origin: String },
    #[error(
        "{origin} lists {count} buildpacks; at most {max} run in one build: remove some and \
         push again"
    )]
    TooMany {
        origin: String,
        count: usize,
        max: usize,
    },
    #[error("preparing the buildpack {spec}: {source}")]
    Io {
        spec: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where a third-party buildpack comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A git URL and the branch, tag or commit after `#`, if any.
    Git {
        url: String,
        reference: Option<String>,
    },
    /// A directory on the controller.
    Path(PathBuf),
}

impl Source {
    /// True when the buildpack is read from the controller's own disk (a path or `file://`).
    pub fn is_local(&self) -> bool {
        match self {
            Source::Path(_) => true,
            Source::Git { url, .. } => url.starts_with("file://"),
        }
    }
}

/// True when `spec` names a built-in buildpack (else it is a third-party one).
pub fn is_builtin(spec: &str) -> bool {
    builtin_of(spec).is_some()
}

/// The built-in buildpack `spec` names: its own name (`nodejs`) or Heroku's short name for
/// the same language (`heroku/nodejs`), so a list written for Heroku builds here as is.
pub fn builtin_of(spec: &str) -> Option<String> {
    let name = spec.strip_prefix("heroku/").unwrap_or(spec);
    super::buildpacks::builtin_names()
        .into_iter()
        .find(|n| n == name)
}

/// The spec as it may be shown (push output, errors, logs): a password or token in a URL's
/// user part (`https://user:TOKEN@host/bp.git`, which private buildpacks need) becomes
/// `***`.
pub fn redacted(spec: &str) -> String {
    let Some((scheme, rest)) = spec.split_once("://") else {
        return spec.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => spec.to_string(),
    }
}

/// Reads a buildpack spec that is not a built-in name.
pub fn parse(spec: &str) -> Result<Source, CustomError> {
    let unknown = || CustomError::Unknown {
        spec: redacted(spec),
        builtin: super::buildpacks::builtin_names().join(", "),
    };
    if spec.is_empty()
        || spec.len() > MAX_SPEC_LEN
        || spec.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(unknown());
    }
    if spec.starts_with('/') {
        if spec.split('/').any(|part| part == "..") {
            return Err(unknown());
        }
        return Ok(Source::Path(PathBuf::from(spec)));
    }
    let known_scheme = ["https://", "http://", "git://", "file://"]
        .iter()
        .any(|s| spec.starts_with(s));
    if !known_scheme {
        return Err(unknown());
    }
    let (url, reference) = match spec.split_once('#') {
        Some((url, r)) => (url, Some(r)),
        None => (spec, None),
    };
    let reference = reference.map(str::to_string);
    if let Some(r) = &reference {
        // A ref becomes a git argument: no options, nothing odd.
        let ok = !r.is_empty()
            && !r.starts_with('-')
            && !r.contains("..")
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c));
        if !ok {
            return Err(unknown());
        }
    }
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    if rest.is_empty() || url.starts_with('-') {
        return Err(unknown());
    }
    Ok(Source::Git {
        url: url.to_string(),
        reference,
    })
}

/// The cache directory of a spec under `data_dir`.
pub fn cache_dir(data_dir: &Path, spec: &str) -> PathBuf {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(spec.as_bytes()));
    data_dir.join("buildpacks").join(&hash[..16])
}

async fn run_git(args: &[&str], spec: &str) -> Result<(), CustomError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args([
        "-c",
        "protocol.file.allow=always",
        "-c",
        "advice.detachedHead=false",
    ])
    .args(args)
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ASKPASS", "/bin/false")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let fetch_err = |detail: String| CustomError::Fetch {
        spec: redacted(spec),
        detail: detail.replace(spec, &redacted(spec)),
    };
    let out = tokio::time::timeout(FETCH_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            fetch_err(format!(
                "git took longer than {} s",
                FETCH_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| fetch_err(format!("running git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = last[last.len().saturating_sub(3)..].join(" / ");
    Err(fetch_err(format!(
        "git {} failed ({}): {tail}",
        args.first().copied().unwrap_or(""),
        out.status
    )))
}

/// One lock per cache dir, so two builds (or a build and `buildpacks:set`) with the same
/// spec never swap the directory while the other reads it.
fn cache_lock(dir: &Path) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Arc::clone(locks.entry(dir.to_path_buf()).or_default())
}

/// Fetches the buildpack into a fresh directory next to its cache dir and swaps it in.
/// Returns the cache dir, which holds the buildpack (without `.git`).
pub async fn fetch(data_dir: &Path, spec: &str, source: &Source) -> Result<PathBuf, CustomError> {
    let lock = cache_lock(&cache_dir(data_dir, spec));
    let _guard = lock.lock().await;
    fetch_locked(data_dir, spec, source).await
}

async fn fetch_locked(
    data_dir: &Path,
    spec: &str,
    source: &Source,
) -> Result<PathBuf, CustomError> {
    let io = |source: std::io::Error| CustomError::Io {
        spec: redacted(spec),
        source,
    };
    let dir = cache_dir(data_dir, spec);
    let parent = dir.parent().expect("cache dir has a parent");
    tokio::fs::create_dir_all(parent).await.map_err(io)?;
    let fresh = parent.join(format!(".fetch-{}", crate::util::random_hex(6)));
    let result = fetch_into(&fresh, spec, source).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_dir_all(&fresh).await;
        return Err(e);
    }
    let _ = tokio::fs::remove_dir_all(fresh.join(".git")).await;
    let old = parent.join(format!(".old-{}", crate::util::random_hex(6)));
    let had_old = tokio::fs::rename(&dir, &old).await.is_ok();
    tokio::fs::rename(&fresh, &dir).await.map_err(io)?;
    if had_old {
        let _ = tokio::fs::remove_dir_all(&old).await;
    }
    check(&dir, spec)?;
    Ok(dir)
}

async fn fetch_into(dest: &Path, spec: &str, source: &Source) -> Result<(), CustomError> {
    let dest_str = dest.to_string_lossy().into_owned();
    match source {
        Source::Path(path) => {
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|e| CustomError::Fetch {
                    spec: redacted(spec),
                    detail: format!("{} cannot be read: {e}", path.display()),
                })?;
            if !meta.is_dir() {
                return Err(CustomError::Fetch {
                    spec: redacted(spec),
                    detail: format!("{} is not a directory", path.display()),
                });
            }
            let (from, to) = (path.clone(), dest.to_path_buf());
            tokio::task::spawn_blocking(move || copy_tree(&from, &to))
                .await
                .map_err(|e| CustomError::Io {
                    spec: redacted(spec),
                    source: std::io::Error::other(e.to_string()),
                })?
                .map_err(|e| CustomError::Io {
                    spec: redacted(spec),
                    source: e,
                })
        }
        Source::Git { url, reference } => {
            let Some(reference) = reference else {
                return run_git(
                    &["clone", "--quiet", "--depth", "1", "--", url, &dest_str],
                    spec,
                )
                .await;
            };
            // A branch or tag: a shallow clone of it. A commit id: a full clone, checked out.
            let shallow = run_git(
                &[
                    "clone", "--quiet", "--depth", "1", "--branch", reference, "--", url, &dest_str,
                ],
                spec,
            )
            .await;
            if shallow.is_ok() {
                return Ok(());
            }
            let _ = tokio::fs::remove_dir_all(dest).await;
            if !reference.bytes().all(|b| b.is_ascii_hexdigit()) || reference.len() < 7 {
                return shallow;
            }
            run_git(
                &["clone", "--quiet", "--no-checkout", "--", url, &dest_str],
                spec,
            )
            .await?;
            run_git(
                &[
                    "-C", &dest_str, "checkout", "--quiet", "--detach", reference, "--",
                ],
                spec,
            )
            .await
        }
    }
}

/// Copies a directory tree (files, dirs, symlinks as links; modes kept).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() != ".git" {
                copy_tree(&src, &dst)?;
            }
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// A classic buildpack has executable `bin/detect` and `bin/compile`.
pub fn check(dir: &Path, spec: &str) -> Result<(), CustomError> {
    use std::os::unix::fs::PermissionsExt;
    for file in ["bin/detect", "bin/compile"] {
        let ok = std::fs::metadata(dir.join(file))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if !ok {
            return Err(CustomError::NotABuildpack {
                spec: redacted(spec),
                file,
            });
        }
    }
    Ok(())
}

/// Fetches a third-party buildpack again and copies it (without `.git`) to `dest`, a new
/// directory of the build.
pub async fn prepare_into(data_dir: &Path, spec: &str, dest: &Path) -> Result<(), CustomError> {
    let source = parse(spec)?;
    let lock = cache_lock(&cache_dir(data_dir, spec));
    let _guard = lock.lock().await;
    let dir = fetch_locked(data_dir, spec, &source).await?;
    let dest = dest.to_path_buf();
    let spec_owned = redacted(spec);
    tokio::task::spawn_blocking(move || copy_tree(&dir, &dest))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(|source| CustomError::Io {
            spec: spec_owned,
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_sources() {
        assert_eq!(
            parse("https://example.invalid/bp.git").unwrap(),
            Source::Git {
                url: "https://example.invalid/bp.git".into(),
                reference: None
            }
        );
        assert_eq!(
            parse("file:///srv/bp#v1.2").unwrap(),
            Source::Git {
                url: "file:///srv/bp".into(),
                reference: Some("v1.2".into())
            }
        );
        assert_eq!(parse("/srv/bp").unwrap(), Source::Path("/srv/bp".into()));
        assert!(parse("/srv/bp").unwrap().is_local());
        assert!(parse("file:///x").unwrap().is_local());
        assert!(!parse("https://h/x").unwrap().is_local());
        for bad in [
            "",
            "rubyx",
            "ftp://h/x",
            "https://",
            "https://h/x#",
            "https://h/x#--upload-pack=x",
            "https://h/x#a..b",
            "https://h/x y",
            "/srv/../etc",
            "relative/path",
        ] {
            assert!(
                matches!(parse(bad), Err(CustomError::Unknown { .. })),
                "{bad:?} parsed"
            );
        }
        assert!(is_builtin("go") && is_builtin("python") && !is_builtin("/x"));
        assert_eq!(
            redacted("https://me:s3cret@host/a@b.git#v1"),
            "https://***@host/a@b.git#v1"
        );
        assert_eq!(redacted("https://host/bp.git"), "https://host/bp.git");
        assert_eq!(redacted("/srv/bp"), "/srv/bp");
    }

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn make_buildpack(dir: &Path, marker: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for (f, body) in [("detect", "echo x"), ("compile", marker)] {
            let p = dir.join("bin").join(f);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[tokio::test]
    async fn fetches_git_urls_pinned_refs_and_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("bp");
        make_buildpack(&repo, "echo one");
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "one"]);
        git(&repo, &["tag", "v1"]);
        make_buildpack(&repo, "echo two");
        git(&repo, &["commit", "-q", "-am", "two"]);
        let data = tmp.path().join("data");
        let url = format!("file://{}", repo.display());

        let read = |dir: &Path| std::fs::read_to_string(dir.join("bin/compile")).unwrap();
        let head = fetch(&data, &url, &parse(&url).unwrap()).await.unwrap();
        assert!(read(&head).contains("two"));
        assert!(!head.join(".git").exists());
        let spec = format!("{url}#v1");
        let v1 = fetch(&data, &spec, &parse(&spec).unwrap()).await.unwrap();
        assert!(read(&v1).contains("one"));
        let path = repo.display().to_string();
        let copied = fetch(&data, &path, &parse(&path).unwrap()).await.unwrap();
        assert!(read(&copied).contains("two"));
        // Fetching again replaces the cached copy.
        let again = fetch(&data, &url, &parse(&url).unwrap()).await.unwrap();
        assert_eq!(again, head);

        let missing = format!("file://{}/nope", tmp.path().display());
        let err = fetch(&data, &missing, &parse(&missing).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, CustomError::Fetch { .. }), "{err}");
        let bad_ref = format!("{url}#no-such-branch");
        assert!(fetch(&data, &bad_ref, &parse(&bad_ref).unwrap())
            .await
            .is_err());
        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = empty.display().to_string();
        let err = fetch(&data, &e, &parse(&e).unwrap()).await.unwrap_err();
        assert!(
            matches!(
                err,
                CustomError::NotABuildpack {
                    file: "bin/detect",
                    ..
                }
            ),
            "{err}"
        );
    }
}
