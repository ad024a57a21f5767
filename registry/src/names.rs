//! Validation of the names the registry turns into file paths: repository names, tags,
//! digests and upload ids. Everything that reaches the disk passes through here first, so a
//! name can never climb out of the store (`..`, absolute paths, empty components).

use super::{Error, Result};

/// Longest repository name accepted (the distribution spec asks clients to stay under 255
/// characters for host + name; we hold the name alone to it).
const MAX_NAME_LEN: usize = 255;

/// Checks a repository name against the distribution spec's grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
///
/// One extra rule: no component after the first may be `tags`, because a repository's tags
/// live in `repositories/<repo>/tags/` and `a/tags` would collide with the tags of `a`.
pub fn check_repo(name: &str) -> Result<()> {
    let invalid = |why: String| Error::Invalid {
        what: format!("repository name {name:?}"),
        why,
    };
    if name.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "it is longer than {MAX_NAME_LEN} characters"
        )));
    }
    for (i, component) in name.split('/').enumerate() {
        if !valid_component(component) {
            return Err(invalid(format!(
                "component {component:?} must be lower-case letters and digits, separated by \
                 single '.', '_', '__' or runs of '-' (e.g. `apps/hello`)"
            )));
        }
        if i > 0 && component == "tags" {
            return Err(invalid(
                "a path component after the first may not be `tags` (reserved by the store)".into(),
            ));
        }
    }
    Ok(())
}

/// One path component: alphanumeric runs joined by `.`, `_`, `__` or `-+`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run, then an alphanumeric character must follow (guaranteed by the
        // last-byte check above once the run ends).
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> Result<()> {
    let b = tag.as_bytes();
    let first_ok = b
        .first()
        .is_some_and(|&x| x.is_ascii_alphanumeric() || x == b'_');
    let rest_ok = b
        .iter()
        .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-');
    if first_ok && rest_ok && b.len() <= 128 {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: format!("tag {tag:?}"),
            why: "a tag is 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
                .into(),
        })
    }
}

/// Checks a digest and returns its hex part. Only `sha256:<64 lower-case hex>` is supported.
pub fn digest_hex(digest: &str) -> Result<&str> {
    let invalid = |why: &str| Error::Invalid {
        what: format!("digest {digest:?}"),
        why: why.into(),
    };
    let Some((alg, hex)) = digest.split_once(':') else {
        return Err(invalid("expected `sha256:<64 hex characters>`"));
    };
    if alg != "sha256" {
        return Err(invalid("only sha256 digests are supported"));
    }
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x))
    {
        return Err(invalid(
            "the sha256 part must be 64 lower-case hex characters",
        ));
    }
    Ok(hex)
}

/// True if `reference` looks like a digest rather than a tag (tags cannot contain ':').
pub fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// Checks an upload id as made by [`new_upload_id`] (a UUID v4 in its usual text form).
pub fn check_upload_id(id: &str) -> Result<()> {
    let ok = id.len() == 36
        && id.bytes().enumerate().all(|(i, x)| match i {
            8 | 13 | 18 | 23 => x == b'-',
            _ => x.is_ascii_digit() || (b'a'..=b'f').contains(&x),
        });
    if ok {
        Ok(())
    } else {
        Err(Error::NotFound {
            kind: super::KIND_UPLOAD,
            name: id.into(),
        })
    }
}

/// A fresh random upload id (UUID v4 text form).
pub fn new_upload_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        for ok in ["a", "apps/hello", "stacks/tiny", "a.b_c__d---e/f0", "x/y/z"] {
            assert!(check_repo(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "..", "a/../b", "a..b", "a___b", "-a", "a-", "a/tags",
            "a b", "a/.x",
        ] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
        assert!(check_repo(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags_and_digests() {
        assert!(check_tag("latest").is_ok());
        assert!(check_tag("_v1.2-rc").is_ok());
        assert!(check_tag(".x").is_err());
        assert!(check_tag("").is_err());
        assert!(check_tag("a/b").is_err());
        assert!(check_tag(&"a".repeat(129)).is_err());
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(digest_hex(&d).unwrap(), "a".repeat(64));
        assert!(digest_hex("sha256:abc").is_err());
        assert!(digest_hex(&format!("sha512:{}", "a".repeat(64))).is_err());
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(digest_hex(&format!("sha256:../{}", "a".repeat(61))).is_err());
    }

    #[test]
    fn upload_ids() {
        let id = new_upload_id();
        assert!(check_upload_id(&id).is_ok(), "{id}");
        assert!(check_upload_id("../../etc/passwd").is_err());
    }
}
