//! The app's `app.json`, read as Heroku and Dokku read it (comments and trailing commas
//! allowed, see [`super::jsonc`]). What paas does with each field (docs/builds.md):
//!
//! * `healthchecks.web` — the startup check of new web jobs ([`super::healthcheck`]);
//! * `formation` (Heroku) or `formations` (Dokku) — `{"web": {"quantity": 2, "size":
//!   "standard-2x"}}`: the formation of the app's FIRST deploy; later `ps:scale` wins;
//! * `scripts.dokku.predeploy` — run in the new release before it goes live, every deploy
//!   (a failure keeps the old release); `scripts.dokku.postdeploy` — after it is live, every
//!   deploy; `scripts.postdeploy` — once, after the first deploy (Heroku's meaning);
//! * `cron` — `[{"command": "…", "schedule": "*/10 * * * *"}]`, one-off jobs on schedule
//!   (UTC), see [`crate::cron`];
//! * `env` — `{"KEY": {"description", "value", "required", "generator": "secret"}}` or
//!   `{"KEY": "value"}`: on the first deploy a var not set yet gets its `value` (or a random
//!   secret); a `required` one (the default, as Heroku's) without either fails the push
//!   naming it.
//!
//! Anything else (`name`, `description`, `addons`, `buildpacks`, `stack`, …) is reported as
//! ignored in the push output.

use std::collections::BTreeMap;

use serde_json::Value;

use super::healthcheck::{self, HealthCheck};
use crate::cron::Schedule;

/// The most cron entries one app may have.
pub const MAX_CRON: usize = 50;

/// What is wrong with app.json. Each message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppJsonError {
    #[error("app.json is not valid JSON (comments and trailing commas are fine): {0}; fix it or remove it, and push again")]
    Json(String),
    #[error("{0}")]
    Health(#[from] healthcheck::AppJsonError),
    #[error("app.json {field}: {why}")]
    Field { field: String, why: String },
}

fn field(field: impl Into<String>, why: impl Into<String>) -> AppJsonError {
    AppJsonError::Field {
        field: field.into(),
        why: why.into(),
    }
}

/// One process type's entry of `formation`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FormationEntry {
    pub quantity: Option<u32>,
    /// Memory in bytes (the size's CPU follows it, see `paas_api::sizes`).
    pub size: Option<u64>,
}

/// One `cron` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CronEntry {
    pub command: String,
    pub schedule: String,
}

/// One `env` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    pub description: Option<String>,
    pub value: Option<String>,
    pub required: bool,
    pub secret: bool,
}

/// What paas uses of app.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppJson {
    pub healthcheck: Option<HealthCheck>,
    pub formation: BTreeMap<String, FormationEntry>,
    pub predeploy: Option<String>,
    pub postdeploy_every: Option<String>,
    pub postdeploy_first: Option<String>,
    pub cron: Vec<CronEntry>,
    pub env: BTreeMap<String, EnvEntry>,
    /// Lines for the push output: what was ignored and why.
    pub notes: Vec<String>,
}

/// The fields paas reads; any other top-level field is reported as ignored.
const KNOWN: &[&str] = &[
    "healthchecks",
    "formation",
    "formations",
    "scripts",
    "cron",
    "env",
];
/// Fields of the app.json schema that only describe the app (no note for them).
const DESCRIPTIVE: &[&str] = &[
    "name",
    "description",
    "keywords",
    "website",
    "repository",
    "logo",
    "success_url",
];

fn string(v: &Value, name: &str) -> Result<String, AppJsonError> {
    match v {
        Value::String(s) if !s.trim().is_empty() && !s.contains('\0') => Ok(s.clone()),
        _ => Err(field(name, "must be a command (a non-empty string)")),
    }
}

/// Parses app.json text.
pub fn parse(text: &str) -> Result<AppJson, AppJsonError> {
    let plain = super::jsonc::strip(text).map_err(|e| AppJsonError::Json(e.to_string()))?;
    let doc: Value = serde_json::from_str(&plain).map_err(|e| AppJsonError::Json(e.to_string()))?;
    let Value::Object(top) = &doc else {
        return Err(AppJsonError::Json(
            "the top level must be an object {…}".into(),
        ));
    };
    let mut out = AppJson::default();
    let (check, notes) = healthcheck::parse(&plain)?;
    out.healthcheck = check;
    out.notes
        .extend(notes.into_iter().map(|n| format!("health check {n}")));
    for key in top.keys() {
        if !KNOWN.contains(&key.as_str()) && !DESCRIPTIVE.contains(&key.as_str()) {
            out.notes
                .push(format!("{key:?} is not supported by paas, ignored"));
        }
    }
    for key in ["formation", "formations"] {
        let Some(f) = top.get(key) else { continue };
        let Value::Object(types) = f else {
            return Err(field(
                key,
                "must be an object like {\"web\": {\"quantity\": 1}}",
            ));
        };
        for (t, entry) in types {
            let name = format!("{key}.{t}");
            if t.is_empty()
                || t.len() > 63
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(field(
                    &name,
                    "is not a process type name (letters, digits, - and _)",
                ));
            }
            let Value::Object(entry) = entry else {
                return Err(field(
                    &name,
                    "must be an object like {\"quantity\": 1, \"size\": \"standard-1x\"}",
                ));
            };
            let quantity = match entry.get("quantity") {
                None | Some(Value::Null) => None,
                Some(q) => Some(q.as_u64().filter(|q| *q <= 100).ok_or_else(|| {
                    field(
                        format!("{name}.quantity"),
                        "must be a whole number from 0 to 100",
                    )
                })? as u32),
            };
            let size = match entry.get("size") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => {
                    Some(paas_api::sizes::parse(s).map_err(|e| field(format!("{name}.size"), e))?)
                }
                Some(_) => {
                    return Err(field(
                        format!("{name}.size"),
                        "must be a size name such as \"standard-2x\"",
                    ))
                }
            };
            out.formation
                .insert(t.clone(), FormationEntry { quantity, size });
        }
    }
    if let Some(scripts) = top.get("scripts") {
        let Value::Object(scripts) = scripts else {
            return Err(field(
                "scripts",
                "must be an object like {\"postdeploy\": \"…\"}",
            ));
        };
        for (key, v) in scripts {
            match key.as_str() {
                "postdeploy" => out.postdeploy_first = Some(string(v, "scripts.postdeploy")?),
                "dokku" => {
                    let Value::Object(d) = v else {
                        return Err(field(
                            "scripts.dokku",
                            "must be an object like {\"predeploy\": \"…\"}",
                        ));
                    };
                    for (k, v) in d {
                        match k.as_str() {
                            "predeploy" => {
                                out.predeploy = Some(string(v, "scripts.dokku.predeploy")?)
                            }
                            "postdeploy" => {
                                out.postdeploy_every = Some(string(v, "scripts.dokku.postdeploy")?)
                            }
                            other => out.notes.push(format!(
                                "scripts.dokku.{other} is not supported by paas, ignored"
                            )),
                        }
                    }
                }
                other => out
                    .notes
                    .push(format!("scripts.{other} is not supported by paas, ignored")),
            }
        }
    }
    if let Some(cron) = top.get("cron") {
        let Value::Array(list) = cron else {
            return Err(field(
                "cron",
                "must be a list like [{\"command\": \"…\", \"schedule\": \"0 * * * *\"}]",
            ));
        };
        if list.len() > MAX_CRON {
            return Err(field(
                "cron",
                format!("has {} entries; at most {MAX_CRON}", list.len()),
            ));
        }
        for (i, entry) in list.iter().enumerate() {
            let name = format!("cron[{i}]");
            let command = string(&entry["command"], &format!("{name}.command"))?;
            let schedule = entry["schedule"].as_str().ok_or_else(|| {
                field(
                    format!("{name}.schedule"),
                    "must be a cron schedule such as \"*/10 * * * *\"",
                )
            })?;
            Schedule::parse(schedule).map_err(|e| field(&name, e.to_string()))?;
            out.cron.push(CronEntry {
                command,
                schedule: schedule.trim().to_string(),
            });
        }
    }
    if let Some(env) = top.get("env") {
        let Value::Object(vars) = env else {
            return Err(field(
                "env",
                "must be an object like {\"KEY\": {\"value\": \"…\"}}",
            ));
        };
        for (key, v) in vars {
            let name = format!("env.{key}");
            paas_api::names::validate_config_key(key).map_err(|e| field(&name, e))?;
            let entry = match v {
                Value::String(s) => EnvEntry { description: None, value: Some(s.clone()), required: true, secret: false },
                Value::Object(o) => {
                    let text = |k: &str| -> Result<Option<String>, AppJsonError> {
                        match o.get(k) {
                            None | Some(Value::Null) => Ok(None),
                            Some(Value::String(s)) => Ok(Some(s.clone())),
                            Some(Value::Number(n)) if k == "value" => Ok(Some(n.to_string())),
                            Some(Value::Bool(b)) if k == "value" => Ok(Some(b.to_string())),
                            Some(_) => Err(field(format!("{name}.{k}"), "must be a string")),
                        }
                    };
                    let required = match o.get("required") {
                        None | Some(Value::Null) => true,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => return Err(field(format!("{name}.required"), "must be true or false")),
                    };
                    let secret = match text("generator")?.as_deref() {
                        None => false,
                        Some("secret") => true,
                        Some(other) => return Err(field(format!("{name}.generator"), format!("{other:?} is not a generator: only \"secret\" is"))),
                    };
                    EnvEntry { description: text("description")?, value: text("value")?, required, secret }
                }
                _ => return Err(field(&name, "must be a value string or an object like {\"value\": \"…\", \"required\": true}")),
            };
            if let Some(value) = &entry.value {
                paas_api::config_vars::check_value(key, value)
                    .map_err(|e| field(&name, e.to_string()))?;
            }
            out.env.insert(key.clone(), entry);
        }
    }
    Ok(out)
}

/// The config vars the first deploy sets from `env` (those not set yet that have a value
/// or a generator), or the required vars that are missing.
pub fn first_deploy_env(
    env: &BTreeMap<String, EnvEntry>,
    config: &BTreeMap<String, String>,
    secret: impl Fn() -> String,
) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut set = BTreeMap::new();
    let mut missing = Vec::new();
    for (key, entry) in env.iter().filter(|(k, _)| !config.contains_key(*k)) {
        if let Some(v) = &entry.value {
            set.insert(key.clone(), v.clone());
        } else if entry.secret {
            set.insert(key.clone(), secret());
        } else if entry.required {
            missing.push(match &entry.description {
                Some(d) => format!("{key} ({d})"),
                None => key.clone(),
            });
        }
    }
    if missing.is_empty() {
        Ok(set)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{
  // a Heroku app.json, commented
  "name": "demo",
  "formation": {"web": {"quantity": 2, "size": "standard-2x"}, "worker": {"quantity": 1},},
  "scripts": {"postdeploy": "./seed", "dokku": {"predeploy": "./migrate", "postdeploy": "./warm"}},
  "cron": [{"command": "./report", "schedule": "*/5 * * * *"}],
  "env": {
    "SECRET_KEY": {"generator": "secret"},
    "LANG": "C.UTF-8",
    "API_TOKEN": {"description": "the vendor's token"},
    "OPTIONAL": {"required": false},
  },
  "addons": ["heroku-postgresql"],
  /* checks */
  "healthchecks": {"web": [{"path": "/health"}]}
}"#;

    #[test]
    fn every_supported_field_is_read() {
        let a = parse(FULL).unwrap();
        assert_eq!(a.healthcheck.unwrap().path, "/health");
        assert_eq!(
            a.formation["web"],
            FormationEntry {
                quantity: Some(2),
                size: Some(1 << 30)
            }
        );
        assert_eq!(a.formation["worker"].quantity, Some(1));
        assert_eq!(a.predeploy.as_deref(), Some("./migrate"));
        assert_eq!(a.postdeploy_every.as_deref(), Some("./warm"));
        assert_eq!(a.postdeploy_first.as_deref(), Some("./seed"));
        assert_eq!(
            a.cron,
            [CronEntry {
                command: "./report".into(),
                schedule: "*/5 * * * *".into()
            }]
        );
        assert_eq!(a.env.len(), 4);
        assert_eq!(a.notes, ["\"addons\" is not supported by paas, ignored"]);
    }

    #[test]
    fn first_deploy_env_sets_values_and_names_what_is_missing() {
        let a = parse(FULL).unwrap();
        let missing = first_deploy_env(&a.env, &BTreeMap::new(), || "s3cret".into()).unwrap_err();
        assert_eq!(missing, ["API_TOKEN (the vendor's token)"]);
        let config = BTreeMap::from([
            ("API_TOKEN".to_string(), "t".to_string()),
            ("LANG".to_string(), "x".to_string()),
        ]);
        let set = first_deploy_env(&a.env, &config, || "s3cret".into()).unwrap();
        assert_eq!(
            set,
            BTreeMap::from([("SECRET_KEY".to_string(), "s3cret".to_string())]),
            "set vars are kept"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, says) in [
            (
                r#"{"formation": {"web": {"quantity": -1}}}"#,
                "formation.web.quantity",
            ),
            (
                r#"{"formation": {"web": {"size": "huge"}}}"#,
                "formation.web.size",
            ),
            (r#"{"formations": {"my web": {}}}"#, "formations.my web"),
            (
                r#"{"cron": [{"command": "x", "schedule": "* *"}]}"#,
                "cron[0]",
            ),
            (
                r#"{"cron": [{"schedule": "* * * * *"}]}"#,
                "cron[0].command",
            ),
            (
                r#"{"scripts": {"dokku": {"predeploy": ""}}}"#,
                "scripts.dokku.predeploy",
            ),
            (r#"{"env": {"1BAD": "x"}}"#, "env.1BAD"),
            (
                r#"{"env": {"A": {"generator": "uuid"}}}"#,
                "env.A.generator",
            ),
            ("[1]", "top level"),
            ("{\"a\": 1 /* open", "never closed"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
