//! `paas buildpacks`, `buildpacks:add [-i N] URL|NAME`, `buildpacks:set [-i N] URL|NAME`,
//! `buildpacks:remove [-i N | URL]` and `buildpacks:clear`, as Heroku's: the app's list of
//! buildpacks, run in order at each build instead of detection (the last one's process
//! types win). The CLI edits the list and puts it whole (`PUT /v1/apps/{app}/buildpacks`);
//! the controller checks and fetches the new entries. Indexes count from 1.

use serde_json::Value;

use super::{CommandError, Context};
use crate::output;

fn path(app: &str) -> String {
    format!("/v1/apps/{app}/buildpacks")
}

fn list_of(answer: &Value) -> Vec<String> {
    answer["buildpacks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The numbered list, and what wins over it.
fn describe(app: &str, answer: &Value) -> String {
    let list = list_of(answer);
    let mut text = if list.is_empty() {
        format!(
            "{app} has no buildpacks set: a .buildpacks file in the repository, or else \
             detection, chooses at each push.\n"
        )
    } else {
        let mut t = format!("=== {app} Buildpacks\n");
        for (i, bp) in list.iter().enumerate() {
            t.push_str(&format!("{}. {bp}\n", i + 1));
        }
        t
    };
    if let Some(url) = answer["buildpack_url"].as_str() {
        text.push_str(&format!(
            "Warning: the BUILDPACK_URL config var ({url}) is set and wins over this list at \
             the next build; `paas config:unset BUILDPACK_URL` to use the list.\n"
        ));
    }
    text
}

fn print(ctx: &Context, app: &str, answer: &Value, done: &str) {
    if ctx.json {
        output::print(&output::json(answer));
    } else {
        if !done.is_empty() {
            output::print(&format!("{done}\n"));
        }
        output::print(&describe(app, answer));
    }
}

fn put(ctx: &Context, app: &str, list: &[String]) -> Result<Value, CommandError> {
    let body = serde_json::json!({ "buildpacks": list });
    Ok(ctx.client()?.put(&path(app), &body)?)
}

fn current(ctx: &Context, app: &str) -> Result<Vec<String>, CommandError> {
    let answer: Value = ctx.client()?.get(&path(app))?;
    Ok(list_of(&answer))
}

/// A 1-based index into a list of `len` (`len + 1` allowed when `append_ok`).
fn position(index: usize, len: usize, append_ok: bool) -> Result<usize, CommandError> {
    let max = if append_ok { len + 1 } else { len };
    if index == 0 || index > max {
        return Err(CommandError::Usage(format!(
            "invalid index {index}: choose one from 1 to {max} (see `paas buildpacks`)"
        )));
    }
    Ok(index - 1)
}

pub(super) fn show(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let answer: Value = ctx.client()?.get(&path(app))?;
    print(ctx, app, &answer, "");
    Ok(())
}

/// Inserts `url` at `index` (default: last).
pub(super) fn add(
    ctx: &Context,
    app: &str,
    url: &str,
    index: Option<usize>,
) -> Result<(), CommandError> {
    let mut list = current(ctx, app)?;
    if list.iter().any(|b| b == url) {
        return Err(CommandError::Usage(format!(
            "the buildpack {url} is already set on {app} (see `paas buildpacks`)"
        )));
    }
    let at = match index {
        Some(i) => position(i, list.len(), true)?,
        None => list.len(),
    };
    list.insert(at, url.to_string());
    let answer = put(ctx, app, &list)?;
    let done = format!("Buildpack added. Next release on {app} will use:");
    print(ctx, app, &answer, &done);
    Ok(())
}

/// Replaces the buildpack at `index` (default: the first; an empty list gets it).
pub(super) fn set(
    ctx: &Context,
    app: &str,
    url: &str,
    index: Option<usize>,
) -> Result<(), CommandError> {
    let mut list = current(ctx, app)?;
    let i = index.unwrap_or(1);
    let at = position(i, list.len(), true)?;
    if list.iter().enumerate().any(|(n, b)| b == url && n != at) {
        return Err(CommandError::Usage(format!(
            "the buildpack {url} is already set on {app} (see `paas buildpacks`)"
        )));
    }
    if at == list.len() {
        list.push(url.to_string());
    } else {
        list[at] = url.to_string();
    }
    let answer = put(ctx, app, &list)?;
    let done = format!("Buildpack set. Next release on {app} will use:");
    print(ctx, app, &answer, &done);
    Ok(())
}

/// Removes the buildpack at `index` or the one equal to `url`.
pub(super) fn remove(
    ctx: &Context,
    app: &str,
    url: Option<&str>,
    index: Option<usize>,
) -> Result<(), CommandError> {
    let mut list = current(ctx, app)?;
    let at = match (url, index) {
        (Some(_), Some(_)) => {
            return Err(CommandError::Usage(
                "give either an index (-i N) or a buildpack URL, not both".into(),
            ))
        }
        (None, None) => {
            return Err(CommandError::Usage(
                "give the buildpack to remove: its URL or name, or -i N".into(),
            ))
        }
        (None, Some(i)) => {
            if list.is_empty() {
                return Err(CommandError::Usage(format!(
                    "{app} has no buildpacks set: nothing to remove"
                )));
            }
            position(i, list.len(), false)?
        }
        (Some(u), None) => list.iter().position(|b| b == u).ok_or_else(|| {
            CommandError::Usage(format!(
                "the buildpack {u} is not set on {app} (see `paas buildpacks`)"
            ))
        })?,
    };
    list.remove(at);
    let answer = put(ctx, app, &list)?;
    let done = format!("Buildpack removed. Next release on {app} will use:");
    print(
        ctx,
        app,
        &answer,
        if list.is_empty() {
            "Buildpack removed."
        } else {
            &done
        },
    );
    Ok(())
}

pub(super) fn clear(ctx: &Context, app: &str) -> Result<(), CommandError> {
    let answer = put(ctx, app, &[])?;
    if ctx.json {
        output::print(&output::json(&answer));
    } else {
        output::print(&format!(
            "Buildpacks cleared. Next release on {app} will detect the buildpack to use.\n"
        ));
        if let Some(url) = answer["buildpack_url"].as_str() {
            output::print(&format!(
                "Warning: the BUILDPACK_URL config var ({url}) is still set and will be used \
                 for the next release.\n"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_from_one() {
        assert_eq!(position(1, 0, true).unwrap(), 0);
        assert_eq!(position(3, 2, true).unwrap(), 2);
        assert!(position(3, 2, false).is_err());
        assert!(position(0, 2, true).is_err());
    }

    #[test]
    fn the_list_warns_when_buildpack_url_wins() {
        let a =
            serde_json::json!({"buildpacks": ["nodejs", "python"], "buildpack_url": "https://h/x"});
        let t = describe("web", &a);
        assert!(
            t.contains("1. nodejs\n2. python\n") && t.contains("BUILDPACK_URL"),
            "{t}"
        );
        let none = serde_json::json!({"buildpacks": [], "buildpack_url": null});
        assert!(describe("web", &none).contains("no buildpacks set"));
    }
}
