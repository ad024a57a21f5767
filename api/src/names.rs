//! Validation of user-chosen names, shared so the API, the git endpoint and the CLI give
//! the same answer with the same words.

/// App names: `[a-z][a-z0-9-]{0,28}[a-z0-9]` (2 to 30 characters, ending with a letter or
/// digit, as Heroku's), so that `<app>.<domain>` is a valid DNS label, `apps/<app>` a valid
/// OCI repository name (a component cannot end with `-`), and the name is safe in paths
/// and nftables comments.
pub fn validate_app_name(name: &str) -> Result<(), String> {
    let ok_len = (2..=30).contains(&name.len());
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let last_ok = !name.ends_with('-');
    if ok_len && first_ok && rest_ok && last_ok {
        Ok(())
    } else {
        Err(format!(
            "invalid app name {name:?}: an app name is 2 to 30 characters of lowercase \
             letters, digits and dashes, starting with a letter and ending with a letter or \
             digit (for example \"my-app\")"
        ))
    }
}

/// Config var keys: `[A-Za-z_][A-Za-z0-9_]*`, at most 255 characters, as a POSIX shell
/// would accept them.
pub fn validate_config_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && key.len() <= 255 {
        Ok(())
    } else {
        Err(format!(
            "invalid config key {key:?}: a key is letters, digits and underscores, not \
             starting with a digit (for example \"DATABASE_URL\")"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        for ok in ["hello", "my-app", "a1", "abcdefghijabcdefghijabcdefghij"] {
            assert!(validate_app_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Hello",
            "1app",
            "-app",
            "app-",
            "a-",
            "my_app",
            "my.app",
            "app/x",
            "abcdefghijabcdefghijabcdefghijk",
            "héllo",
        ] {
            let err = validate_app_name(bad).unwrap_err();
            assert!(err.contains("lowercase letters"), "{bad}: {err}");
        }
    }

    #[test]
    fn config_keys() {
        assert!(validate_config_key("DATABASE_URL").is_ok());
        assert!(validate_config_key("_x1").is_ok());
        for bad in ["", "1A", "A-B", "A B", "A=B"] {
            assert!(validate_config_key(bad).is_err(), "{bad}");
        }
    }
}
