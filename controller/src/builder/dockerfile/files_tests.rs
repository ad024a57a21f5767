//! Tests of COPY's file handling (no root needed).

use super::*;
use crate::builder::dockerfile::tree::{layers_touching, read_file};

fn layer_names(path: &Path) -> Vec<(String, u64, u32)> {
    let mut a = tar::Archive::new(layer_reader(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.path().unwrap().to_string_lossy().to_string(),
                e.header().uid().unwrap(),
                e.header().mode().unwrap(),
            )
        })
        .collect()
}

fn tree(root: &Path, files: &[(&str, &str)]) {
    for (p, text) in files {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

#[test]
fn copy_of_a_dir_a_glob_and_a_file_lands_where_docker_puts_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("ctx");
    tree(
        &root,
        &[
            ("src/a.go", "a"),
            ("src/b.go", "b"),
            ("src/x.txt", "x"),
            ("main.go", "m"),
        ],
    );
    let job = |sources: &[String], dest: &str| {
        let out = d.path().join("l.tar.zst");
        CopyJob {
            root: &root,
            sources,
            dest,
            owner: (1000, 1000),
            chmod: None,
            unpack: false,
            from_context: true,
        }
        .pack(&out)
        .unwrap();
        layer_names(&out)
            .into_iter()
            .map(|(n, uid, _)| {
                assert_eq!(uid, 1000);
                n
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        job(&["src".into()], "/app/"),
        vec!["app/", "app/a.go", "app/b.go", "app/x.txt"]
    );
    assert_eq!(
        job(&["src/*.go".into()], "/app/"),
        vec!["app/a.go", "app/b.go"]
    );
    assert_eq!(
        job(&["main.go".into()], "/srv/server.go"),
        vec!["srv/server.go"]
    );
    assert_eq!(
        job(&["*.go".into(), "src/x.txt".into()], "/"),
        vec!["main.go", "x.txt"]
    );
    let missing = CopyJob {
        root: &root,
        sources: &["nope/*.c".into()],
        dest: "/x/",
        owner: (0, 0),
        chmod: None,
        unpack: false,
        from_context: true,
    }
    .hashes()
    .unwrap_err();
    assert!(
        missing.to_string().contains("nope/*.c: no such file"),
        "{missing}"
    );
}

#[test]
fn hashes_follow_content_and_mode() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().to_path_buf();
    tree(&root, &[("a", "1")]);
    let sources = ["a".to_string()];
    let job = CopyJob {
        root: &root,
        sources: &sources,
        dest: "/a",
        owner: (0, 0),
        chmod: None,
        unpack: false,
        from_context: true,
    };
    let first = job.hashes().unwrap();
    assert_eq!(first, job.hashes().unwrap());
    fs::write(root.join("a"), "2").unwrap();
    let second = job.hashes().unwrap();
    assert_ne!(first, second);
    fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_ne!(second, job.hashes().unwrap());
}

fn tar_layer(path: &Path, entries: &[(&str, Option<&str>)]) {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        File::create(path).unwrap(),
        flate2::Compression::fast(),
    ));
    for (name, text) in entries {
        let mut h = Header::new_gnu();
        match text {
            Some(t) => {
                h.set_entry_type(EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(t.len() as u64);
                b.append_data(&mut h, name, t.as_bytes()).unwrap();
            }
            None => {
                h.set_entry_type(EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, name, io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn stage_files_come_out_of_layers_with_whiteouts_applied() {
    let d = tempfile::tempdir().unwrap();
    let l1 = d.path().join("l1");
    let l2 = d.path().join("l2");
    tar_layer(
        &l1,
        &[
            ("out/", None),
            ("out/app", Some("v1")),
            ("out/old", Some("o")),
            ("etc/", None),
            (
                "etc/passwd",
                Some("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
            ),
        ],
    );
    tar_layer(
        &l2,
        &[
            ("out/", None),
            ("out/app", Some("v2")),
            ("out/.wh.old", Some("")),
        ],
    );
    let dir = d.path().join("stage");
    // Digests are the cache's keys: the blob paths are unique to this test.
    let named: Vec<(String, PathBuf)> = [&l1, &l2]
        .iter()
        .map(|p| (p.display().to_string(), p.to_path_buf()))
        .collect();
    let needed = layers_touching(&named, &["out".into()]).unwrap();
    assert_eq!(needed, [l1.clone(), l2.clone()]);
    extract_from_layers(&needed, &["out".into()], &dir).unwrap();
    assert_eq!(fs::read_to_string(dir.join("out/app")).unwrap(), "v2");
    assert!(!dir.join("out/old").exists());
    assert!(!dir.join("etc").exists(), "only what was asked for");
    assert_eq!(
        layers_touching(&named, &["etc/passwd".into()]).unwrap(),
        std::slice::from_ref(&l1),
        "the layer that only has out/ is not opened for etc/passwd"
    );
    assert_eq!(read_file(&named, "/out/app", 100).unwrap().unwrap(), b"v2");
    assert_eq!(read_file(&named, "/out/old", 100).unwrap(), None);
    assert_eq!(read_file(&named, "/out/app", 1).unwrap(), None, "over max");
    assert_eq!(read_file(&named, "/out", 100).unwrap(), None, "a directory");
    let passwd =
        String::from_utf8(read_file(&named, "/etc/passwd", 1000).unwrap().unwrap()).unwrap();
    assert_eq!(resolve_owner("app", &passwd, "").unwrap(), (1000, 1000));
    assert_eq!(resolve_owner("app:0", &passwd, "").unwrap(), (1000, 0));
    assert_eq!(resolve_owner("5:6", "", "").unwrap(), (5, 6));
    assert!(resolve_owner("nobody2", &passwd, "")
        .unwrap_err()
        .contains("no user nobody2"));
}

#[test]
fn add_unpacks_a_local_tarball() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("ctx");
    fs::create_dir_all(&root).unwrap();
    tar_layer(
        &root.join("site.tgz"),
        &[("index.html", Some("<h1>hi</h1>"))],
    );
    let out = d.path().join("l");
    CopyJob {
        root: &root,
        sources: &["site.tgz".into()],
        dest: "/srv/",
        owner: (0, 0),
        chmod: None,
        unpack: true,
        from_context: true,
    }
    .pack(&out)
    .unwrap();
    let names: Vec<String> = layer_names(&out).into_iter().map(|n| n.0).collect();
    assert_eq!(names, vec!["srv/index.html"]);
}

#[test]
fn a_committed_symlink_does_not_let_copy_read_outside_the_context() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("ctx");
    let outside = d.path().join("host");
    tree(&outside, &[("secret", "host secret")]);
    fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    for source in ["link/secret", "link/*"] {
        let sources = [source.to_string()];
        let e = CopyJob {
            root: &root,
            sources: &sources,
            dest: "/x/",
            owner: (0, 0),
            chmod: None,
            unpack: false,
            from_context: true,
        }
        .hashes()
        .unwrap_err();
        assert!(e.to_string().contains("no such file"), "{source}: {e}");
    }
    // The link itself is copied as a link.
    let out = d.path().join("l");
    CopyJob {
        root: &root,
        sources: &["link".into()],
        dest: "/x/",
        owner: (0, 0),
        chmod: None,
        unpack: false,
        from_context: true,
    }
    .pack(&out)
    .unwrap();
    let names: Vec<String> = layer_names(&out).into_iter().map(|n| n.0).collect();
    assert_eq!(names, vec!["x/link"]);
}
