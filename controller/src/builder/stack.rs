//! Which stack an app builds and runs on: its `STACK` config var when set, else `bookworm`
//! when that stack was imported, else the controller's default (`tiny`).

use std::collections::BTreeMap;

use crate::registry::Registry;

/// The stack preferred when present (Debian 12 with python3 and nodejs).
pub const PREFERRED: &str = "bookworm";

/// Why the app's stack cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "the app's STACK config var names the stack {name:?}, which this controller does not \
         have (it has: {have}). Build it with `deploy/build-stack {name} DATA/stacks/{name}` \
         and restart the controller, or unset STACK (`paas config:unset STACK`)"
    )]
    Unknown { name: String, have: String },
}

/// True when `stacks/<name>:latest` is in the registry.
pub async fn has_stack(registry: &Registry, name: &str) -> bool {
    registry
        .get_manifest(&format!("stacks/{name}"), "latest")
        .await
        .is_ok()
}

/// The stack for a build of an app with `config`; `fallback` is the controller's default.
pub async fn choose(
    registry: &Registry,
    config: &BTreeMap<String, String>,
    fallback: &str,
) -> Result<String, StackError> {
    if let Some(name) = config
        .get("STACK")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        if has_stack(registry, name).await {
            return Ok(name.to_string());
        }
        let mut have = Vec::new();
        for candidate in [PREFERRED, fallback] {
            if has_stack(registry, candidate).await && !have.contains(&candidate) {
                have.push(candidate);
            }
        }
        return Err(StackError::Unknown {
            name: name.to_string(),
            have: if have.is_empty() {
                "none".into()
            } else {
                have.join(", ")
            },
        });
    }
    if has_stack(registry, PREFERRED).await {
        return Ok(PREFERRED.to_string());
    }
    Ok(fallback.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn registry_with(stacks: &[&str]) -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path().join("registry")).unwrap();
        let config = registry.put_blob(b"{}").await.unwrap();
        let manifest = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\
             \"digest\":\"{config}\",\"size\":2}},\"layers\":[]}}"
        );
        for name in stacks {
            registry
                .put_manifest(
                    &format!("stacks/{name}"),
                    Some("latest"),
                    manifest.as_bytes(),
                )
                .await
                .unwrap();
        }
        (dir, registry)
    }

    fn config(stack: Option<&str>) -> BTreeMap<String, String> {
        stack
            .map(|s| BTreeMap::from([("STACK".to_string(), s.to_string())]))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn bookworm_is_the_default_when_present_else_the_fallback() {
        let (_d, both) = registry_with(&["tiny", "bookworm"]).await;
        assert_eq!(
            choose(&both, &config(None), "tiny").await.unwrap(),
            "bookworm"
        );
        let (_d, tiny) = registry_with(&["tiny"]).await;
        assert_eq!(choose(&tiny, &config(None), "tiny").await.unwrap(), "tiny");
        assert_eq!(
            choose(&tiny, &config(Some(" ")), "tiny").await.unwrap(),
            "tiny"
        );
    }

    #[tokio::test]
    async fn the_stack_config_var_wins_and_an_unknown_one_is_an_error() {
        let (_d, both) = registry_with(&["tiny", "bookworm"]).await;
        assert_eq!(
            choose(&both, &config(Some("tiny")), "tiny").await.unwrap(),
            "tiny"
        );
        let err = choose(&both, &config(Some("heroku-24")), "tiny")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"heroku-24\""), "{err}");
        assert!(err.contains("bookworm, tiny"), "{err}");
        assert!(err.contains("deploy/build-stack heroku-24"), "{err}");
        let err = choose(&both, &config(Some("../x")), "tiny")
            .await
            .unwrap_err();
        assert!(matches!(err, StackError::Unknown { .. }));
    }
}
