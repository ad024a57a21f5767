//! `GET /v1/openapi.json`: the REST API as an OpenAPI 3 document, built with utoipa from
//! [`OPERATIONS`] (every `/v1` route, its answer and body) and the `ToSchema` types of
//! `paas_api`. The tests in `openapi_tests.rs` hold it to the code: every `.route(…)` under
//! `/v1` in `src/http/` must be listed here and every listed operation must reach a real
//! handler, so neither can drift from the other.

use std::sync::{Arc, LazyLock};

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header;
use paas_api::{codes, App, Build, CreateApp, ErrorBody, ErrorDetail, Node, Release};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem,
    PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
};

use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/openapi.json", get(openapi_json))
}

/// What an operation answers (or takes) as its body.
#[derive(Debug, Clone, Copy)]
pub enum Body {
    /// No body.
    None,
    /// One value of a named schema (`App`).
    One(&'static str),
    /// An array of a named schema.
    Many(&'static str),
    /// A JSON object described in prose.
    Object,
    /// A JSON array of objects described in prose.
    Objects,
    /// `text/plain`.
    Text,
    /// `text/event-stream` (server-sent events).
    Events,
    /// `application/octet-stream` (a file).
    Binary,
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// The success status.
    pub status: u16,
    pub answer: Body,
    pub request: Body,
}

const fn op(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    status: u16,
    answer: Body,
    request: Body,
) -> Operation {
    Operation {
        method,
        path,
        tag,
        summary,
        status,
        answer,
        request,
    }
}

use Body::{Binary, Events, Many, Object, Objects, One, Text};

/// Every `/v1` operation. A route added in `src/http/` without a line here fails the
/// `every_v1_route_is_documented` test.
pub const OPERATIONS: &[Operation] = &[
    op("GET", "/v1/openapi.json", "meta", "This document", 200, Object, Body::None),
    op("GET", "/v1/apps", "apps", "List apps by name (paged: ?limit=&after=NAME)", 200, Many("App"), Body::None),
    op("POST", "/v1/apps", "apps", "Create an app", 201, One("App"), One("CreateApp")),
    op("GET", "/v1/apps/{app}", "apps", "Show an app", 200, One("App"), Body::None),
    op("PATCH", "/v1/apps/{app}", "apps", "Rename an app: {\"name\": \"new-name\"}", 200, One("App"), Object),
    op("DELETE", "/v1/apps/{app}", "apps", "Destroy an app (?confirm=APP)", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/releases", "releases", "List releases, newest first (paged: ?limit=&after=VERSION)", 200, Many("Release"), Body::None),
    op("POST", "/v1/apps/{app}/releases", "releases", "Roll back ({\"rollback\": N}, or {} for the previous release) or deploy an image without a build ({\"image\": REF}: a name in our registry, or HOST[:PORT]/REPO:TAG copied from another registry with the caller's registry login; 422 registry_login_required, 404 not_found, 422 no_linux_amd64, 502 digest_mismatch)", 201, One("Release"), Object),
    op("GET", "/v1/apps/{app}/releases/{version}", "releases", "Show a release (3 or v3)", 200, One("Release"), Body::None),
    op("POST", "/v1/apps/{app}/rollback", "releases", "Roll back to the previous release (or {\"rollback\": N})", 201, One("Release"), Object),
    op("GET", "/v1/apps/{app}/config", "config", "Config vars as an object; answers with an ETag", 200, Object, Body::None),
    op("PATCH", "/v1/apps/{app}/config", "config", "Set (\"value\") and unset (null) vars and make the release that carries them, in one transaction; If-Match → 412 when stale; 409 when a concurrent change held the app too long (try again)", 200, Object, Object),
    op("GET", "/v1/apps/{app}/formation", "formation", "Process types with quantity, size and memory; answers with an ETag", 200, Objects, Body::None),
    op("PATCH", "/v1/apps/{app}/formation", "formation", "Scale and resize: {\"web\": {\"quantity\": 2, \"size\": \"standard-2x\"}}; If-Match → 412 when stale", 200, Objects, Object),
    op("PUT", "/v1/apps/{app}/formation/{process_type}", "formation", "Set one process type's count: {\"count\": N}", 200, Object, Object),
    op("GET", "/v1/apps/{app}/jobs", "jobs", "The app's jobs with state, node and restarts (paged: ?limit=&after=ID)", 200, Objects, Body::None),
    op("POST", "/v1/apps/{app}/jobs/{id}/restart", "jobs", "Replace one job with zero downtime", 202, Object, Body::None),
    op("POST", "/v1/apps/{app}/jobs/{id}/stop", "jobs", "Stop one job now (the formation starts a replacement)", 202, Object, Body::None),
    op("GET", "/v1/apps/{app}/cron", "cron", "The cron entries of the current release's app.json with their next run (UTC)", 200, Objects, Body::None),
    op("POST", "/v1/apps/{app}/restart", "jobs", "Replace all jobs (?type=web: one process type) with zero downtime", 202, Object, Body::None),
    op("GET", "/v1/apps/{app}/builds", "builds", "List builds, newest first (paged: ?limit=&after=ID)", 200, Many("Build"), Body::None),
    op("POST", "/v1/apps/{app}/builds", "builds", "Rebuild the last pushed commit without a push (paas builds:create; {\"no_cache\": true} skips the Dockerfile layer cache and the buildpack cache; body optional). Answers the new build at once; follow its log", 201, One("Build"), Object),
    op("GET", "/v1/apps/{app}/builds/{id}", "builds", "Show a build", 200, One("Build"), Body::None),
    op("GET", "/v1/apps/{app}/builds/{id}/log", "builds", "A build's output (?follow=true streams it while it runs)", 200, Text, Body::None),
    op("GET", "/v1/apps/{app}/logs", "logs", "The app's logs as server-sent events (?tail=true follows)", 200, Events, Body::None),
    op("GET", "/v1/registry-logins", "registry", "Your logins for other registries: [{\"host\", \"username\"}] (never a password)", 200, Objects, Body::None),
    op("PUT", "/v1/registry-logins/{host}", "registry", "Store your login for a registry after checking it there: {\"username\", \"password\"} (422 registry_login_refused)", 200, Object, Object),
    op("DELETE", "/v1/registry-logins/{host}", "registry", "Forget your login for a registry", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/domains", "domains", "List the app's custom domains", 200, Objects, Body::None),
    op("POST", "/v1/apps/{app}/domains", "domains", "Add a custom domain: {\"hostname\": \"www.example.com\"}", 201, Object, Object),
    op("DELETE", "/v1/apps/{app}/domains/{hostname}", "domains", "Remove a custom domain", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/volumes", "volumes", "List the app's persistent volumes: [{\"name\", \"size_bytes\", \"used_bytes\", \"available_bytes\", \"full\", \"node\", \"node_state\", \"mounts\": [{\"type\", \"path\"}], \"created_at\"}] (use is null while the node is down)", 200, Objects, Body::None),
    op("POST", "/v1/apps/{app}/volumes", "volumes", "Create a volume on a node: {\"name\": \"uploads\", \"size\": \"1G\", \"node\": \"n1\"?} (16M to 1T; writes past the size fail with ENOSPC)", 201, Object, Object),
    op("GET", "/v1/apps/{app}/volumes/{name}", "volumes", "One volume, with its use", 200, Object, Body::None),
    op("DELETE", "/v1/apps/{app}/volumes/{name}", "volumes", "Destroy an unmounted volume and its files: ?confirm={app} (400 confirmation_required without it, 409 while mounted)", 204, Body::None, Body::None),
    op("PUT", "/v1/apps/{app}/volumes/{name}/mount", "volumes", "Mount the volume into the jobs of one process type: {\"type\": \"web\", \"path\": \"/app/uploads\"}; the type then runs one job, on the volume's node, and restarts (409 when it is scaled above 1)", 200, Object, Object),
    op("DELETE", "/v1/apps/{app}/volumes/{name}/mount", "volumes", "Unmount the volume (its files stay); the type it was mounted into restarts", 200, Object, Body::None),
    op("POST", "/v1/apps/{app}/run", "run", "Start a one-off job of the current release", 201, Object, Object),
    op("GET", "/v1/apps/{app}/run/{id}/output", "run", "A one-off job's output, streamed", 200, Text, Body::None),
    op("DELETE", "/v1/apps/{app}/run/{id}", "run", "Stop and remove a one-off job; answers its exit code", 200, Body::None, Object),
    op("GET", "/v1/nodes", "nodes", "List the nodes", 200, Many("Node"), Body::None),
    op("POST", "/v1/nodes/heartbeat", "nodes", "A node agent's heartbeat (node token)", 204, Body::None, Object),
    op("DELETE", "/v1/nodes/{name}", "nodes", "Forget a node and its agent credential; 409 while it has jobs and is not draining (admins)", 200, Object, Body::None),
    op("POST", "/v1/nodes/{name}/drain", "nodes", "Drain a node", 200, Object, Body::None),
    op("DELETE", "/v1/nodes/{name}/drain", "nodes", "Undrain a node", 200, Object, Body::None),
    op("GET", "/v1/nodes/{name}/jobs", "nodes", "The jobs the controller expects on a node (node token)", 200, Objects, Body::None),
    op("POST", "/v1/nodes/{name}/subnet", "nodes", "A node's container subnet (node token)", 200, Object, Body::None),
    op("GET", "/v1/apps/{app}/certs", "certs", "The app's TLS certificates (never the key)", 200, Objects, Body::None),
    op("POST", "/v1/apps/{app}/certs", "certs", "Upload a PEM chain and key: {\"certificate\", \"key\"}; 422 names the failed check", 201, Object, Object),
    op("DELETE", "/v1/apps/{app}/certs/{id}", "certs", "Remove a certificate", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/tls", "certs", "The app's HTTPS settings: {\"https_redirect\": bool}", 200, Object, Body::None),
    op("PUT", "/v1/apps/{app}/tls", "certs", "Set the app's HTTPS settings", 200, Object, Object),
    op("PATCH", "/v1/apps/{app}/tls", "certs", "Set the app's HTTPS settings", 200, Object, Object),
    op("GET", "/v1/apps/{app}/acme", "certs", "Automatic certificates (ACME HTTP-01): {\"enabled\", \"available\", \"domains\": [{\"hostname\", \"state\", \"reason\", \"not_after\", \"cert_id\"}]}", 200, Object, Body::None),
    op("PUT", "/v1/apps/{app}/acme", "certs", "Turn automatic certificates on or off: {\"enabled\": bool}; 409 when the controller has no --acme-directory", 200, Object, Object),
    op("PATCH", "/v1/apps/{app}/acme", "certs", "Turn automatic certificates on or off: {\"enabled\": bool}; 409 when the controller has no --acme-directory", 200, Object, Object),
    op("POST", "/v1/apps/{app}/exec", "exec", "Run a command in the app's first web job over the exec stream (Upgrade: paas-exec → 101)", 101, Body::None, Body::None),
    op("POST", "/v1/apps/{app}/jobs/{id}/exec", "exec", "Run a command in one job over the exec stream (Upgrade: paas-exec → 101)", 101, Body::None, Body::None),
    op("POST", "/v1/apps/{app}/run/attach", "run", "A one-off job attached over the exec stream (Upgrade: paas-exec → 101)", 101, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/collaborators", "access", "The users who may use the app", 200, Objects, Body::None),
    op("POST", "/v1/apps/{app}/collaborators", "access", "Give a user access: {\"user\": NAME}", 201, Objects, Object),
    op("DELETE", "/v1/apps/{app}/collaborators/{user}", "access", "Take a user's access away", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/api-access", "access", "Whether the app's containers may reach the API ports", 200, Object, Body::None),
    op("PATCH", "/v1/apps/{app}/api-access", "access", "Let the app's containers reach the API ports or not: {\"enabled\": BOOL} (admins)", 200, Object, Object),
    op("POST", "/v1/login", "access", "Trade a user name and password for an API token: {\"user\", \"password\", \"name\"?}", 201, Object, Object),
    op("GET", "/v1/whoami", "access", "Who the presented token belongs to", 200, Object, Body::None),
    op("GET", "/v1/users", "access", "List users (admins)", 200, Objects, Body::None),
    op("POST", "/v1/users", "access", "Add a user: {\"name\", \"role\"?, \"password\"?} (admins)", 201, Object, Object),
    op("DELETE", "/v1/users/{name}", "access", "Remove a user with their tokens and access (admins)", 204, Body::None, Body::None),
    op("POST", "/v1/users/{name}/password", "access", "Set a user's password: {\"password\"}", 204, Body::None, Object),
    op("GET", "/v1/tokens", "access", "The caller's API tokens (?all=true: everyone's, admins); never the secret", 200, Objects, Body::None),
    op("POST", "/v1/tokens", "access", "Create an API token, shown once: {\"name\"?, \"expires_in_secs\"?, \"user\"?}", 201, Object, Object),
    op("DELETE", "/v1/tokens/{id}", "access", "Revoke an API token", 204, Body::None, Body::None),
    op("POST", "/v1/node-tokens", "nodes", "Issue a node its own token: {\"node\"} (admins)", 201, Object, Object),
    op("GET", "/v1/apps/{app}/buildpacks", "builds", "The buildpacks the app builds with, in order ({\"buildpacks\": [...], \"buildpack_url\": BUILDPACK_URL or null}; []: detection)", 200, Object, Body::None),
    op("PUT", "/v1/apps/{app}/buildpacks", "builds", "Replace the app's buildpack list ({\"buildpacks\": [\"nodejs\", \"https://…#ref\"]}; [] clears it): built-in names (or heroku/NAME), git URLs, or controller paths and file:// URLs (admins); new ones fetched now", 200, Object, Object),
    op("GET", "/v1/apps/{app}/buildpack", "builds", "The last buildpack of the app's list (null: detection)", 200, Object, Body::None),
    op("PUT", "/v1/apps/{app}/buildpack", "builds", "Make the app's list this one buildpack ({\"buildpack\": \"python\"}); as PUT /buildpacks", 200, Object, Object),
    op("DELETE", "/v1/apps/{app}/buildpack", "builds", "Clear the app's buildpack list: detection again", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/addons", "addons", "The add-ons attached to the app (name, service, plan, state, node, config var, data_bytes: what its data takes on its node, null when unknown)", 200, Many("Addon"), Body::None),
    op("POST", "/v1/apps/{app}/addons", "addons", "Create a postgresql or redis add-on ({\"service\", \"plan\"?, \"as\"?}); its URL is set on the app (DATABASE_URL, REDIS_URL or <AS>_URL) in a release once it answers; 422 unknown_addon_service / unknown_addon_plan list the ones there are", 201, One("Addon"), One("CreateAddon")),
    op("GET", "/v1/apps/{app}/addons/{addon}", "addons", "Show an add-on attached to the app (with data_bytes and data_measured_at: its volume as its node last measured it, null before the first measurement and while the node is down)", 200, One("Addon"), Body::None),
    op("DELETE", "/v1/apps/{app}/addons/{addon}", "addons", "Destroy an add-on of this app, its data and credentials (?confirm=APP); its URL is unset on every attached app", 204, Body::None, Body::None),
    op("POST", "/v1/apps/{app}/addon-attachments", "addons", "Attach an add-on of another app you may use ({\"addon\", \"as\"?}): its URL as <AS>_URL", 201, One("Addon"), One("AttachAddon")),
    op("DELETE", "/v1/apps/{app}/addon-attachments/{addon}", "addons", "Detach an add-on from an app that does not own it (its URL var is unset)", 204, Body::None, Body::None),
    op("POST", "/v1/apps/{app}/addons/{addon}/psql", "addons", "psql in a PostgreSQL add-on's job over the exec stream (Upgrade: paas-exec → 101); the START frame's command is psql's arguments, the credentials go in its environment", 101, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/pg-backups", "addons", "The backups of the app's PostgreSQL add-ons (id, add-on, size, state, created)", 200, Many("PgBackup"), Body::None),
    op("POST", "/v1/apps/{app}/pg-backups", "addons", "Capture a backup (pg_dump -Fc) of the app's PostgreSQL add-on ({\"addon\"?}); 202 with state running, then completed or failed", 202, One("PgBackup"), One("PgBackupTarget")),
    op("GET", "/v1/apps/{app}/pg-backups/{id}", "addons", "Show a backup of one of the app's PostgreSQL add-ons", 200, One("PgBackup"), Body::None),
    op("DELETE", "/v1/apps/{app}/pg-backups/{id}", "addons", "Delete a backup (its dump file too)", 204, Body::None, Body::None),
    op("GET", "/v1/apps/{app}/pg-backups/{id}/download", "addons", "Download a completed backup's dump (pg_dump -Fc, for pg_restore; <id>.dump; 409 while it runs or when it failed)", 200, Binary, Body::None),
    op("POST", "/v1/apps/{app}/pg-backups/{id}/restore", "addons", "Restore a backup of any add-on you may use into the app's PostgreSQL add-on ({\"addon\"?}, ?confirm=APP) with pg_restore --clean --if-exists", 200, One("PgBackup"), One("PgBackupTarget")),
    op("GET", "/v1/apps/{app}/redis-backups", "addons", "The backups (RDB snapshots) of the app's Redis add-ons", 200, Many("PgBackup"), Body::None),
    op("POST", "/v1/apps/{app}/redis-backups", "addons", "Capture an RDB snapshot of the app's Redis add-on (redis-cli --rdb; {\"addon\"?}); 202 with state running", 202, One("PgBackup"), One("PgBackupTarget")),
    op("GET", "/v1/apps/{app}/redis-backups/{id}", "addons", "Show a backup of one of the app's Redis add-ons", 200, One("PgBackup"), Body::None),
    op("GET", "/v1/apps/{app}/redis-backups/{id}/download", "addons", "Download a completed Redis backup's RDB snapshot (<id>.rdb; 409 while it runs or when it failed)", 200, Binary, Body::None),
    op("DELETE", "/v1/apps/{app}/redis-backups/{id}", "addons", "Delete a Redis backup (its file too)", 204, Body::None, Body::None),
    op("POST", "/v1/apps/{app}/redis-backups/{id}/restore", "addons", "Restore an RDB snapshot of any Redis add-on you may use into the app's Redis add-on ({\"addon\"?}, ?confirm=APP): all its data is replaced and Redis restarts in its job", 200, One("PgBackup"), One("PgBackupTarget")),
    op("GET", "/v1/apps/{app}/pg-backup-schedules", "addons", "The daily backup schedules of the app's PostgreSQL add-ons", 200, Many("PgBackupSchedule"), Body::None),
    op("PUT", "/v1/apps/{app}/pg-backup-schedules/{addon}", "addons", "Back the add-on up every day at HH:MM UTC, keeping the newest N scheduled backups ({\"at\", \"keep\"}; 400 validation_error for a bad time or a keep outside 1..90)", 200, One("PgBackupSchedule"), One("SetPgBackupSchedule")),
    op("DELETE", "/v1/apps/{app}/pg-backup-schedules/{addon}", "addons", "Stop the add-on's daily backups (the backups stay)", 204, Body::None, Body::None),
    op("DELETE", "/v1/node-tokens/{node}", "nodes", "Revoke a node's own token (admins)", 204, Body::None, Body::None),
];

/// The error codes every operation may answer with (the `code` of [`ErrorBody`]).
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    (
        codes::BAD_REQUEST,
        400,
        "the body or a parameter cannot be read",
    ),
    (
        codes::VALIDATION,
        400,
        "a value breaks a rule (name, size, quantity)",
    ),
    (
        "invalid_config_key",
        400,
        "a config var's key breaks the key rule",
    ),
    (
        "confirmation_required",
        400,
        "a destroy without ?confirm=APP",
    ),
    (
        "unknown_addon_service",
        422,
        "addons:create names a service paas does not offer (the message lists them)",
    ),
    (
        "unknown_addon_plan",
        422,
        "addons:create names a plan the service does not have (the message lists them)",
    ),
    (
        "invalid_attachment_name",
        422,
        "--as is not NAME of letters, digits and _ (it becomes NAME_URL)",
    ),
    (
        codes::UNAUTHORIZED,
        401,
        "no token, or a token the controller does not know",
    ),
    (codes::FORBIDDEN, 403, "the token may not use this endpoint"),
    (
        codes::NOT_FOUND,
        404,
        "no such app, release, build, job, domain or node",
    ),
    (
        codes::CONFLICT,
        409,
        "the state forbids it now (taken name, building, no release, a concurrent release write: try again)",
    ),
    (
        codes::PRECONDITION_FAILED,
        412,
        "If-Match no longer matches: read again and retry",
    ),
    (
        codes::RATE_LIMITED,
        429,
        "too many failed logins or bad tokens from one address: wait Retry-After seconds",
    ),
    (
        codes::INTERNAL,
        500,
        "a controller fault; its log has the details",
    ),
    (codes::UNAVAILABLE, 503, "no node can do it now"),
];

fn method(m: &str) -> HttpMethod {
    match m {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        other => panic!("OPERATIONS names an unknown method {other}"),
    }
}

fn schema_ref(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The media type and schema of a body, or None for no body.
fn content(body: Body) -> Option<(&'static str, RefOr<Schema>)> {
    let object = || {
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::Object).build(),
        ))
    };
    let text = || {
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        ))
    };
    Some(match body {
        Body::None => return None,
        One(name) => ("application/json", schema_ref(name)),
        Many(name) => (
            "application/json",
            RefOr::T(Schema::Array(
                ArrayBuilder::new().items(schema_ref(name)).build(),
            )),
        ),
        Object => ("application/json", object()),
        Objects => (
            "application/json",
            RefOr::T(Schema::Array(ArrayBuilder::new().items(object()).build())),
        ),
        Text => ("text/plain", text()),
        Events => ("text/event-stream", text()),
        Binary => ("application/octet-stream", text()),
    })
}

fn build() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for o in OPERATIONS {
        let mut answer = ResponseBuilder::new().description(o.summary);
        if let Some((media, schema)) = content(o.answer) {
            answer = answer.content(media, ContentBuilder::new().schema(Some(schema)).build());
        }
        let error = ResponseBuilder::new()
            .description("an error: see the error codes in the description")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(schema_ref("ErrorBody")))
                    .build(),
            );
        let mut operation = OperationBuilder::new()
            .tag(o.tag)
            .summary(Some(o.summary))
            .operation_id(Some(operation_id(o)))
            .response(o.status.to_string(), answer.build())
            .response("default", error.build());
        for name in path_params(o.path) {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(RefOr::T(Schema::Object(
                        ObjectBuilder::new().schema_type(Type::String).build(),
                    )))),
            );
        }
        if let Some((media, schema)) = content(o.request) {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .content(media, ContentBuilder::new().schema(Some(schema)).build())
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        paths = paths.path(o.path, PathItem::new(method(o.method), operation.build()));
    }
    let codes: String = ERROR_CODES
        .iter()
        .map(|(code, status, what)| format!("\n- `{code}` ({status}): {what}"))
        .collect();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("paas REST API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(format!(
                    "Every endpoint takes `Authorization: Bearer <token>`. Every error is \
                     `{{\"error\": {{\"code\", \"message\"}}}}` (ErrorBody) with one of these \
                     stable codes:{codes}\n\nLists take `?limit=N&after=KEY` and answer \
                     `Link: <…>; rel=\"next\"` and `Next-Range: KEY` while more remain."
                )))
                .build(),
        )
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .schema_from::<App>()
                .schema_from::<CreateApp>()
                .schema_from::<Release>()
                .schema_from::<Build>()
                .schema_from::<Node>()
                .schema_from::<ErrorBody>()
                .schema_from::<ErrorDetail>()
                .schema_from::<paas_api::Addon>()
                .schema_from::<paas_api::AddonAttachment>()
                .schema_from::<paas_api::CreateAddon>()
                .schema_from::<paas_api::AttachAddon>()
                .schema_from::<paas_api::PgBackup>()
                .schema_from::<paas_api::PgBackupTarget>()
                .schema_from::<paas_api::PgBackupSchedule>()
                .schema_from::<paas_api::SetPgBackupSchedule>()
                .build(),
        ))
        .build()
}

/// `getAppsAppBuilds`-style id from the method and path.
fn operation_id(o: &Operation) -> String {
    let mut id = o.method.to_ascii_lowercase();
    for part in o.path.trim_start_matches("/v1/").split(['/', '.', '_']) {
        let part = part.trim_matches(['{', '}']);
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// The `{name}` parameters of a path, in order.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|p| p.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| {
        build()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    });
    &DOC
}

async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
