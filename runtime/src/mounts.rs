//! The config's own mounts ([`crate::FsMount`], an OCI config's `mounts` outside
//! `/proc`, `/dev` and `/sys`), in the config's order: their options as mount flags,
//! filesystem data and propagation, and the init's steps for each.
//!
//! A filesystem (tmpfs, mqueue, …) is one `mount(2)` with the flags and data. A bind
//! (`bind` / `rbind` in the options, or type `bind`) is `MS_BIND` (`| MS_REC` for
//! `rbind`), then, when other flags were asked for (`ro`, `nosuid`, …), a
//! `MS_REMOUNT | MS_BIND` with them, as the kernel ignores them on the bind itself.
//! A propagation option (`private`, `shared`, `slave`, `unbindable`, each also with an
//! `r` prefix for the whole subtree) is one more `mount(2)` on the target with only that
//! flag; the last one given wins.

use crate::fs::ContainerFs;
use crate::plan::{cpath, cstr, mount_op, Op};
use crate::{Error, FsMount, Result};

/// A mount's options split up: flags for `mount(2)`, bind or not, the filesystem data
/// and the propagation flags (0 = none given).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub flags: libc::c_ulong,
    /// `bind` (`MS_BIND`) or `rbind` (`MS_BIND | MS_REC`), 0 for neither.
    pub bind: libc::c_ulong,
    pub data: String,
    pub propagation: libc::c_ulong,
}

/// The flags of a propagation option name (`shared`, `rslave`, …).
fn propagation_flags(name: &str) -> Option<libc::c_ulong> {
    let (rec, base) = match name.strip_prefix('r') {
        Some(base) => (libc::MS_REC, base),
        None => (0, name),
    };
    let flag = match base {
        "private" => libc::MS_PRIVATE,
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    };
    Some(flag | rec)
}

/// fstab-style options to mount flags, bind, data and propagation.
pub(crate) fn parse(options: &[String]) -> Options {
    let mut out = Options {
        flags: 0,
        bind: 0,
        data: String::new(),
        propagation: 0,
    };
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        if let Some(p) = propagation_flags(o) {
            out.propagation = p;
            continue;
        }
        match o.as_str() {
            "bind" => out.bind = libc::MS_BIND,
            "rbind" => out.bind = libc::MS_BIND | libc::MS_REC,
            "ro" => out.flags |= libc::MS_RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => out.flags |= libc::MS_NOSUID,
            "nodev" => out.flags |= libc::MS_NODEV,
            "noexec" => out.flags |= libc::MS_NOEXEC,
            "sync" => out.flags |= libc::MS_SYNCHRONOUS,
            "dirsync" => out.flags |= libc::MS_DIRSYNC,
            "noatime" => out.flags |= libc::MS_NOATIME,
            "nodiratime" => out.flags |= libc::MS_NODIRATIME,
            "relatime" => out.flags |= libc::MS_RELATIME,
            "strictatime" => out.flags |= libc::MS_STRICTATIME,
            "suid" | "dev" | "exec" | "atime" | "diratime" | "norelatime" => {}
            other => data.push(other),
        }
    }
    out.data = data.join(",");
    out
}

/// The propagation flags of an OCI `rootfsPropagation` value (0 = leave `/` private,
/// as the whole mount namespace already is).
pub(crate) fn propagation(value: Option<&str>) -> Result<libc::c_ulong> {
    match value {
        None | Some("") | Some("private") | Some("rprivate") => Ok(0),
        Some(v) => propagation_flags(v).ok_or_else(|| {
            Error::InvalidSpec(format!(
                "rootfs propagation {v:?}: expected private, shared, slave or unbindable \
                 (optionally with an r prefix)"
            ))
        }),
    }
}

/// Appends the init's steps for `mounts` (in order), making their mount points in the
/// rootfs (or in an earlier bind mount's source).
pub(crate) fn fs_mount_ops(
    cfs: &mut ContainerFs,
    mounts: &[FsMount],
    ops: &mut Vec<Op>,
) -> Result<()> {
    for m in mounts {
        crate::spec::check_container_path("mount destination", &m.destination)?;
        let o = parse(&m.options);
        let bind = o.bind != 0 || m.fstype == "bind";
        let target = if bind {
            bind_ops(cfs, m, &o, ops)?
        } else {
            let dest = cfs.ensure_dir(&m.destination)?;
            let target = cfs.mount_target(&dest);
            ops.push(Op::Mount {
                what: "filesystem",
                source: Some(cstr("mount source", m.source.as_str())?),
                target: cpath(&target)?,
                fstype: Some(cstr("fstype", m.fstype.as_str())?),
                flags: o.flags,
                data: (!o.data.is_empty())
                    .then(|| cstr("mount data", o.data.as_str()))
                    .transpose()?,
                optional: false,
            });
            target
        };
        if o.propagation != 0 {
            ops.push(mount_op(
                "propagation of",
                None,
                &target,
                None,
                o.propagation,
                None,
            )?);
        }
    }
    Ok(())
}

/// A bind mount's steps; returns its host-side target.
fn bind_ops(
    cfs: &mut ContainerFs,
    m: &FsMount,
    o: &Options,
    ops: &mut Vec<Op>,
) -> Result<std::path::PathBuf> {
    let source = std::fs::canonicalize(&m.source).map_err(|e| {
        Error::InvalidSpec(format!(
            "bind mount on {}: source {} cannot be used ({e}); it must exist on the host",
            m.destination, m.source
        ))
    })?;
    let dest = if source.is_dir() {
        cfs.ensure_dir(&m.destination)?
    } else {
        cfs.ensure_file(&m.destination)?
    };
    let target = cfs.mount_target(&dest);
    ops.push(crate::plan::bind_op(
        cfs,
        &source,
        &target,
        o.bind & libc::MS_REC != 0,
    )?);
    if o.flags != 0 {
        let flags = libc::MS_BIND | libc::MS_REMOUNT | o.flags;
        ops.push(mount_op("remount of", None, &target, None, flags, None)?);
    }
    cfs.add_mount(&dest, &source);
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fstab_options_become_flags_data_and_propagation() {
        let o = parse(&strings(&[
            "nosuid",
            "ro",
            "mode=755",
            "size=1m",
            "rprivate",
            "strictatime",
        ]));
        assert_eq!(
            o.flags,
            libc::MS_NOSUID | libc::MS_RDONLY | libc::MS_STRICTATIME
        );
        assert_eq!(o.data, "mode=755,size=1m");
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(o.bind, 0);
        let o = parse(&strings(&["rbind", "ro", "shared", "rslave"]));
        assert_eq!(o.bind, libc::MS_BIND | libc::MS_REC);
        assert_eq!(o.propagation, libc::MS_SLAVE | libc::MS_REC, "last wins");
        assert_eq!(o.data, "");
        for (name, flag) in [
            ("shared", libc::MS_SHARED),
            ("slave", libc::MS_SLAVE),
            ("private", libc::MS_PRIVATE),
            ("unbindable", libc::MS_UNBINDABLE),
            ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
        ] {
            assert_eq!(parse(&strings(&[name])).propagation, flag, "{name}");
        }
        assert_eq!(
            propagation(Some("rslave")).unwrap(),
            libc::MS_SLAVE | libc::MS_REC
        );
        assert_eq!(propagation(None).unwrap(), 0);
        assert_eq!(propagation(Some("rprivate")).unwrap(), 0);
        assert!(propagation(Some("weird")).is_err());
        assert!(propagation(Some("ro")).is_err());
    }

    #[test]
    fn binds_keep_their_place_and_get_a_remount_and_propagation() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir(&root).unwrap();
        let src = dir.path().join("etc");
        std::fs::create_dir(&src).unwrap();
        let mounts = vec![
            FsMount {
                destination: "/tmp/t".into(),
                fstype: "tmpfs".into(),
                source: "tmpfs".into(),
                options: strings(&["size=1k", "shared"]),
            },
            FsMount {
                destination: "/mnt/etc".into(),
                fstype: String::new(),
                source: src.display().to_string(),
                options: strings(&["rbind", "nosuid", "rslave"]),
            },
        ];
        let mut cfs = ContainerFs::new(&root);
        let mut ops = Vec::new();
        fs_mount_ops(&mut cfs, &mounts, &mut ops).unwrap();
        let steps: Vec<(&str, libc::c_ulong)> = ops
            .iter()
            .map(|op| match op {
                Op::Mount { what, flags, .. } => (*what, *flags),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                ("filesystem", 0),
                ("propagation of", libc::MS_SHARED),
                ("bind", libc::MS_BIND | libc::MS_REC),
                (
                    "remount of",
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID
                ),
                ("propagation of", libc::MS_SLAVE | libc::MS_REC),
            ]
        );
        assert!(root.join("mnt/etc").is_dir());
        let missing = vec![FsMount {
            destination: "/x".into(),
            fstype: "bind".into(),
            source: "/nonexistent/dir".into(),
            options: vec![],
        }];
        match fs_mount_ops(&mut cfs, &missing, &mut ops) {
            Err(Error::InvalidSpec(m)) => assert!(m.contains("/nonexistent/dir"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
