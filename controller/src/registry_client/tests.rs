//! Unit tests of the pure parts of the registry client: platform choice, media types,
//! and which hosts, realms and redirects it may reach.

use super::*;
use serde_json::json;

fn entry(d: &str, os: &str, arch: &str, variant: Option<&str>) -> Value {
    let mut p = json!({"os": os, "architecture": arch});
    if let Some(v) = variant {
        p["variant"] = json!(v);
    }
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1, "platform": p})
}

#[test]
fn the_linux_amd64_entry_is_picked() {
    let index = json!({"manifests": [
        entry("sha256:arm", "linux", "arm64", Some("v8")),
        entry("sha256:att", "unknown", "unknown", None),
        entry("sha256:v3", "linux", "amd64", Some("v3")),
        entry("sha256:amd", "linux", "amd64", None),
        entry("sha256:win", "windows", "amd64", None),
    ]});
    assert_eq!(pick_linux_amd64(&index).unwrap(), "sha256:amd");
    let only_v3 = json!({"manifests": [entry("sha256:v3", "linux", "amd64", Some("v3"))]});
    assert_eq!(pick_linux_amd64(&only_v3).unwrap(), "sha256:v3");
}

#[test]
fn an_index_without_linux_amd64_lists_what_it_has() {
    let index = json!({"manifests": [
        entry("sha256:arm", "linux", "arm64", Some("v8")),
        entry("sha256:win", "windows", "amd64", None),
    ]});
    assert_eq!(
        pick_linux_amd64(&index).unwrap_err(),
        "linux/arm64/v8, windows/amd64"
    );
    assert_eq!(pick_linux_amd64(&json!({})).unwrap_err(), "no entries");
}

#[test]
fn schema1_is_told_apart_from_oci_manifests() {
    assert!(is_schema1(
        "application/vnd.docker.distribution.manifest.v1+prettyjws"
    ));
    assert!(is_schema1(
        "application/vnd.docker.distribution.manifest.v1+json"
    ));
    assert!(!is_schema1(manifest::OCI_MANIFEST));
    assert!(!is_schema1(manifest::DOCKER_MANIFEST));
}

#[test]
fn index_media_types_and_shapes() {
    assert!(is_index(manifest::OCI_INDEX, b"{}"));
    assert!(is_index(
        "application/vnd.docker.distribution.manifest.list.v2+json",
        b"{}"
    ));
    assert!(!is_index(
        "application/vnd.docker.distribution.manifest.v2+json",
        b"{}"
    ));
    assert!(is_index("", br#"{"manifests": []}"#));
    assert!(!is_index("", br#"{"layers": []}"#));
}

#[test]
fn local_addresses_need_the_insecure_flag() {
    for h in [
        "127.0.0.1:5000",
        "localhost",
        "10.1.2.3",
        "[::1]:5000",
        "192.168.1.1:80",
        "169.254.169.254",
        "0.0.0.0",
    ] {
        assert!(is_local_host(h), "{h}");
        assert!(
            matches!(Client::new(h, &[], None), Err(Error::HostRefused { .. })),
            "{h}"
        );
    }
    assert!(!is_local_host("registry.example.com:5000"));
    assert!(!is_local_host("8.8.8.8"));
    let c = Client::new("127.0.0.1:5000", &["127.0.0.1:5000".into()], None).unwrap();
    assert_eq!(c.base, "http://127.0.0.1:5000");
    let c = Client::new("registry.example.com", &[], None).unwrap();
    assert_eq!(c.base, "https://registry.example.com");
    let c = Client::new("docker.io", &[], None).unwrap();
    assert_eq!(c.base, "https://registry-1.docker.io");
}

#[test]
fn realms_and_redirects_are_checked() {
    let u = |s: &str| reqwest::Url::parse(s).unwrap();
    assert!(check_url(&u("https://auth.example.com/token"), &[]).is_ok());
    assert!(check_url(&u("http://auth.example.com/token"), &[]).is_err());
    assert!(check_url(&u("https://127.0.0.1:9/token"), &[]).is_err());
    assert!(check_url(&u("https://10.0.0.1/x"), &[]).is_err());
    let allowed = vec!["127.0.0.1:5000".to_string()];
    assert!(check_url(&u("http://127.0.0.1:5000/token"), &allowed).is_ok());
    assert!(check_url(&u("http://127.0.0.1:5001/token"), &allowed).is_err());
}
