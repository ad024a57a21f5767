//! `paas config`, `config:get KEY`, `config:set KEY=value …` and `config:unset KEY …`.
//! Setting or unsetting vars of a deployed app makes a new release that the controller
//! rolls out.

use std::collections::BTreeMap;

use super::{CommandError, Context};
use crate::output::{self, Spinner};

type Vars = BTreeMap<String, String>;

fn fetch(ctx: &Context, app: &str) -> Result<Vars, CommandError> {
    let client = ctx.client()?;
    let _spinner = Spinner::start("Reading config vars…", ctx.json);
    Ok(client.get(&format!("/v1/apps/{app}/config"))?)
}

/// `KEY: value` lines, aligned; JSON is the object.
fn render(ctx: &Context, app: &str, vars: &Vars) -> String {
    if ctx.json {
        return output::json(vars);
    }
    if vars.is_empty() {
        return format!("{app} has no config vars. Set one with `paas config:set KEY=value`.\n");
    }
    let pairs: Vec<(&str, String)> = vars.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    format!("=== {app} Config Vars\n{}", output::key_values(&pairs))
}

pub(super) fn show(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let vars = fetch(ctx, app)?;
    output::print(&render(ctx, app, &vars));
    Ok(())
}

pub(super) fn get(ctx: &Context, app: &str, key: &str) -> Result<(), CommandError> {
    check_key(key)?;
    let vars = fetch(ctx, app)?;
    match vars.get(key) {
        Some(value) if ctx.json => output::print(&output::json(value)),
        Some(value) => output::print(&format!("{value}\n")),
        None => {
            return Err(CommandError::Usage(format!(
                "{app} has no config var {key}: set it with `paas config:set {key}=value -a {app}`"
            )))
        }
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), CommandError> {
    paas_api::names::validate_config_key(key).map_err(CommandError::Usage)
}

pub(super) fn set(ctx: &Context, app: &str, pairs: &[String]) -> Result<(), CommandError> {
    let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CommandError::Usage(format!(
                "{pair:?} is not KEY=value: write it as {pair}=value"
            )));
        };
        check_key(key)?;
        // The controller checks again, and the total of the app's config (64 KB).
        paas_api::config_vars::check_value(key, value)
            .map_err(|e| CommandError::Usage(e.to_string()))?;
        changes.insert(key.to_string(), Some(value.to_string()));
    }
    apply(ctx, app, &changes, "Setting")
}

pub(super) fn unset(ctx: &Context, app: &str, keys: &[String]) -> Result<(), CommandError> {
    let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
    for key in keys {
        check_key(key)?;
        changes.insert(key.clone(), None);
    }
    apply(ctx, app, &changes, "Unsetting")
}

fn apply(
    ctx: &Context,
    app: &str,
    changes: &BTreeMap<String, Option<String>>,
    verb: &str,
) -> Result<(), CommandError> {
    let client = ctx.client()?;
    let vars: Vars = {
        let _spinner = Spinner::start("Updating config vars…", ctx.json);
        client.patch_if_match(
            &format!("/v1/apps/{app}/config"),
            changes,
            ctx.if_match.as_deref(),
        )?
    };
    if ctx.json {
        output::print(&output::json(&vars));
        return Ok(());
    }
    let keys: Vec<&str> = changes.keys().map(String::as_str).collect();
    eprintln!("{verb} {} on {app}… done", keys.join(", "));
    let set: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(k, _)| changes.get(k).is_some_and(Option::is_some))
        .collect();
    if !set.is_empty() {
        output::print(&render(ctx, app, &set));
    }
    Ok(())
}
