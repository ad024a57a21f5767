//! Add-on routes (see [`crate::addons`] and docs/addons.md):
//!
//! * `GET /v1/apps/{app}/addons`: the add-ons attached to the app;
//! * `POST /v1/apps/{app}/addons` `{"service", "plan"?, "as"?}`: a new add-on (201), which
//!   sets its URL on the app once it answers; an unknown service or plan is a 422 naming
//!   the ones there are;
//! * `GET /v1/apps/{app}/addons/{addon}`, `DELETE …?confirm=APP`: show, destroy (its data
//!   too; only from its own app);
//! * `POST /v1/apps/{app}/addon-attachments` `{"addon", "as"?}`, `DELETE
//!   /v1/apps/{app}/addon-attachments/{addon}`: attach an add-on of another app the caller
//!   may use, and detach it.
//!
//! Every route takes `AppAccess` on `{app}`; an add-on of an app the caller may not use is a
//! 404, exactly like a missing one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use paas_api::{Addon, AttachAddon, CreateAddon, ErrorBody};
use serde::Deserialize;

use super::ApiError;
use crate::addons::ops::{self, OpsError};
use crate::auth::AppAccess;
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/addons", get(list).post(create))
        .route("/v1/apps/{app}/addons/{addon}", get(info).delete(destroy))
        .route("/v1/apps/{app}/addon-attachments", post(attach))
        .route("/v1/apps/{app}/addon-attachments/{addon}", delete(detach))
}

impl IntoResponse for OpsError {
    fn into_response(self) -> Response {
        match self {
            OpsError::Invalid(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(ErrorBody::new(e.code(), e.to_string())),
            )
                .into_response(),
            OpsError::Api(e) => e.into_response(),
        }
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, OpsError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body must be {shape}: {e}")).into())
}

async fn list(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<Addon>>, OpsError> {
    Ok(Json(ops::list(&c, &caller, &app).await?))
}

async fn create(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Addon>), OpsError> {
    let req: CreateAddon = body(
        &bytes,
        r#"{"service": "postgresql"|"redis", "plan": "mini", "as": "NAME"}"#,
    )?;
    Ok((
        StatusCode::CREATED,
        Json(ops::create(&c, &caller, &app, &req).await?),
    ))
}

async fn info(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<Addon>, OpsError> {
    Ok(Json(ops::info(&c, &caller, &app, &addon).await?))
}

#[derive(Debug, Deserialize)]
struct Confirm {
    confirm: Option<String>,
}

async fn destroy(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, addon)): Path<(String, String)>,
    Query(q): Query<Confirm>,
) -> Result<StatusCode, OpsError> {
    ops::destroy(&c, &app, &addon, q.confirm.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn attach(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Addon>), OpsError> {
    let req: AttachAddon = body(&bytes, r#"{"addon": "NAME", "as": "NAME"}"#)?;
    Ok((
        StatusCode::CREATED,
        Json(ops::attach(&c, &caller, &app, &req).await?),
    ))
}

async fn detach(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, addon)): Path<(String, String)>,
) -> Result<StatusCode, OpsError> {
    ops::detach(&c, &app, &addon).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use crate::http::test_support::{controller, send, send_as};
    use crate::store::role;

    /// The heartbeat of node `node` carrying one volume measurement.
    fn heartbeat(node: &str, volume: &str, bytes: u64, at: &str) -> String {
        serde_json::json!({
            "name": node,
            "url": "http://127.0.0.1:9",
            "memory_bytes": 1u64 << 30,
            "volumes": [{"name": volume, "used_bytes": bytes, "measured_at": at}],
        })
        .to_string()
    }

    /// An add-on's data size comes from its own node's heartbeat, is shown in the list and
    /// the info answer, is null before the first measurement and while the node is down,
    /// and is seen only by those who may use an app it is attached to.
    #[tokio::test]
    async fn the_data_size_is_its_nodes_measurement_and_only_its_apps_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        c.store.create_app("shop").await.unwrap();
        c.store.create_app("evil").await.unwrap();
        for (user, app) in [("ann", "shop"), ("mallory", "evil")] {
            c.store.create_user(user, role::MEMBER, None).await.unwrap();
            c.store.add_collaborator(app, user).await.unwrap();
        }
        let ann = c.store.create_token("ann", "t", None).await.unwrap().1;
        let mallory = c.store.create_token("mallory", "t", None).await.unwrap().1;
        let (status, body) = send_as(
            &c,
            &ann,
            "POST",
            "/v1/apps/shop/addons",
            r#"{"service":"postgresql"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let created: paas_api::Addon = serde_json::from_str(&body).unwrap();
        assert_eq!(created.data_bytes, None, "not measured yet");
        assert!(body.contains(r#""data_bytes":null"#), "{body}");
        let mut row = c.store.addon(&created.name).await.unwrap().unwrap();
        row.node = Some("n1".into());
        c.store.update_addon_run(&row).await.unwrap();
        let volume = crate::addons::volume(row.id);
        let info = format!("/v1/apps/shop/addons/{}", created.name);
        let get = |path: String, token: String| {
            let c = c.clone();
            async move {
                let (status, body) = send_as(&c, &token, "GET", &path, "").await;
                (status, body)
            }
        };

        // Another node's claim about the volume changes nothing.
        let (status, body) = send(
            &c,
            "POST",
            "/v1/nodes/heartbeat",
            &heartbeat("n2", &volume, 1 << 40, "2026-12-07T10:00:00Z"),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, body) = get(info.clone(), ann.clone()).await;
        assert!(body.contains(r#""data_bytes":null"#), "{body}");

        let (status, body) = send(
            &c,
            "POST",
            "/v1/nodes/heartbeat",
            &heartbeat("n1", &volume, 8_912_896, "2026-12-07T10:00:00Z"),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = get("/v1/apps/shop/addons".into(), ann.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list: Vec<paas_api::Addon> = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (list[0].data_bytes, list[0].data_measured_at.as_deref()),
            (Some(8_912_896), Some("2026-12-07T10:00:00Z"))
        );
        let (_, body) = get(info.clone(), ann.clone()).await;
        assert!(body.contains(r#""data_bytes":8912896"#), "{body}");

        // Another member sees neither the add-on nor its size, from any app.
        for path in [
            "/v1/apps/shop/addons".to_string(),
            info.clone(),
            format!("/v1/apps/evil/addons/{}", created.name),
        ] {
            let (status, body) = get(path.clone(), mallory.clone()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            assert!(!body.contains("8912896"), "{body}");
        }
        let (status, body) = get("/v1/apps/evil/addons".into(), mallory.clone()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));

        // Its node goes down: unknown, not the old number and not 0.
        c.store
            .upsert_node("n1", "http://127.0.0.1:9", 1 << 30, 0)
            .await
            .unwrap();
        let (_, body) = get(info, ann).await;
        assert!(
            body.contains(r#""data_bytes":null"#) && body.contains(r#""data_measured_at":null"#),
            "{body}"
        );
    }

    /// Create, attach, detach and destroy with their refusals (no node runs: the add-on
    /// stays `creating`, which is all the API needs).
    #[tokio::test]
    async fn create_attach_detach_destroy_and_their_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        c.store.create_app("shop").await.unwrap();
        c.store.create_app("reports").await.unwrap();

        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/shop/addons",
            r#"{"service":"redis","plan":"xl"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body.contains("unknown_addon_plan") && body.contains("mini (128 MiB)"),
            "{body}"
        );
        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/shop/addons",
            r#"{"service":"postgresql","as":"a-b"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("invalid_attachment_name"), "{body}");

        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/shop/addons",
            r#"{"service":"postgresql"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let created: paas_api::Addon = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (created.state.as_str(), created.config_var.as_deref()),
            ("creating", Some("DATABASE_URL"))
        );
        assert!(!body.contains(
            &c.store
                .addon(&created.name)
                .await
                .unwrap()
                .unwrap()
                .password
        ));
        let name = created.name;
        // A second database for the same var is refused; with --as it is not.
        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/shop/addons",
            r#"{"service":"postgresql"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body.contains("--as"), "{body}");

        let attach = format!(r#"{{"addon":"{name}","as":"analytics"}}"#);
        let (status, body) = send(&c, "POST", "/v1/apps/reports/addon-attachments", &attach).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.contains(r#""config_var":"ANALYTICS_URL""#), "{body}");
        let (status, _) = send(&c, "POST", "/v1/apps/reports/addon-attachments", &attach).await;
        assert_eq!(status, StatusCode::CONFLICT, "attached already");
        let (status, body) = send(&c, "GET", "/v1/apps/reports/addons", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(&name) && body.contains(r#""app":"shop""#),
            "{body}"
        );

        let path = format!("/v1/apps/shop/addons/{name}");
        let (status, body) = send(
            &c,
            "DELETE",
            &format!("/v1/apps/reports/addons/{name}?confirm=reports"),
            "",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "only its own app destroys it: {body}"
        );
        let (status, body) = send(
            &c,
            "DELETE",
            &format!("/v1/apps/shop/addon-attachments/{name}"),
            "",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "not detached from its own app: {body}"
        );
        let (status, body) = send(&c, "DELETE", &path, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("attached to 1 other app"), "{body}");

        let (status, _) = send(
            &c,
            "DELETE",
            &format!("/v1/apps/reports/addon-attachments/{name}"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = send(&c, "GET", &format!("/v1/apps/reports/addons/{name}"), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "detached");
        let (status, _) = send(&c, "DELETE", &format!("{path}?confirm=shop"), "").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = send(&c, "GET", &path, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "destroyed");
        assert!(c.store.addons().await.unwrap().is_empty());
    }
}
