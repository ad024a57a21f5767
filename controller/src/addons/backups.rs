//! `pg:psql`, `pg:backups:*` and `redis:backups:*`: commands that run inside an add-on's
//! own job through the agent's exec stream ([`paas_api::exec`]), with the credentials in
//! the process's environment (`PGPASSWORD` …, `REDISCLI_AUTH`; never its argv, never
//! logged).
//!
//! A PostgreSQL backup is `pg_dump -Fc`, a Redis one the RDB snapshot `redis-cli --rdb -`
//! fetches; either is streamed frame by frame into
//! `DATA/backups/<addon id>/<backup id>.dump` (0600, in a 0700 directory; never whole in
//! memory) and recorded in the store ([`crate::store::BackupRow`]: size, time, state). A
//! restore streams such a file into `pg_restore --clean --if-exists --no-owner --no-acl
//! --single-transaction` in the target add-on's job, or (Redis) into a script that puts it
//! in place of the data and restarts Redis in the job ([`REDIS_RESTORE`]). Destroying an
//! add-on deletes its backups ([`delete_all`]).

use std::path::PathBuf;
use std::sync::Arc;

use paas_api::exec::{self as proto, kind, ExecRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::state::Controller;
use crate::store::{AddonRow, BackupRow, ScheduleRow, StoreError};
use crate::util::{now_rfc3339, random_hex, unix_ms};

/// Backup states (kept with the rows, in the store).
pub use crate::store::backup_state as state;

/// How much of a failed command's stderr is kept for its error message.
const STDERR_KEPT: usize = 4096;
/// Bytes of a dump sent in one STDIN frame on restore.
const CHUNK: usize = 256 * 1024;

/// Errors of running a command in an add-on's job.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} is not running now (state {1}): wait until `paas addons:info` says available")]
    NotRunning(String, String),
    #[error("the node of {0} is unknown")]
    NoNode(String),
    #[error("reaching the add-on's job: {0}")]
    Agent(String),
    #[error("the exec stream of the add-on's job broke: {0}")]
    Stream(#[from] std::io::Error),
    #[error("{command} failed (exit {code}): {stderr}")]
    Failed {
        command: &'static str,
        code: i32,
        stderr: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The directory of an add-on's dumps.
pub fn dir(c: &Controller, addon_id: u32) -> PathBuf {
    c.settings
        .data_dir
        .join("backups")
        .join(addon_id.to_string())
}

/// The file of one dump.
pub fn file(c: &Controller, b: &BackupRow) -> PathBuf {
    dir(c, b.addon_id).join(format!("{}.dump", b.id))
}

/// The libpq environment that connects as the add-on's own user over its Unix socket.
pub fn pg_env(a: &AddonRow) -> Vec<String> {
    vec![
        "PGHOST=/run/postgresql".to_string(),
        format!("PGUSER={}", super::pg_user(a.id)),
        format!("PGDATABASE={}", super::pg_database(a.id)),
        format!("PGPASSWORD={}", a.password),
    ]
}

/// The environment that lets a client in `a`'s job in: libpq's for PostgreSQL,
/// `REDISCLI_AUTH` for Redis.
pub fn service_env(a: &AddonRow) -> Vec<String> {
    match a.service.as_str() {
        "postgresql" => pg_env(a),
        _ => vec![format!("REDISCLI_AUTH={}", a.password)],
    }
}

/// Opens the exec stream into `a`'s job and sends `req` as its START frame, with the
/// service's client environment ([`service_env`]) added to `req.env`.
pub async fn exec_in(
    c: &Controller,
    a: &AddonRow,
    mut req: ExecRequest,
) -> Result<reqwest::Upgraded, BackupError> {
    let (Some(node), Some(job)) = (a.node.as_deref(), a.job_id.as_deref()) else {
        return Err(BackupError::NotRunning(a.name.clone(), a.state.clone()));
    };
    if a.state != super::supervisor::state::AVAILABLE {
        return Err(BackupError::NotRunning(a.name.clone(), a.state.clone()));
    }
    let url = c
        .store
        .list_nodes()
        .await?
        .into_iter()
        .find(|n| n.name == node)
        .map(|n| n.url)
        .ok_or_else(|| BackupError::NoNode(a.name.clone()))?;
    let mut up = c
        .agents
        .exec(&url, job)
        .await
        .map_err(|e| BackupError::Agent(e.user_message()))?;
    req.env.extend(service_env(a));
    let start = serde_json::to_vec(&req).map_err(std::io::Error::other)?;
    up.write_all(&proto::encode(kind::START, &start)).await?;
    Ok(up)
}

/// Reads one frame; `None` at the end of the stream.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<proto::Frame>> {
    let mut header = [0u8; proto::HEADER_LEN];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len > proto::MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            proto::FrameError::TooLong(len),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    Ok(Some(proto::Frame {
        kind: header[0],
        payload,
    }))
}

/// Reads the process's frames to its EXIT: STDOUT into `out`, STDERR (and ERROR) kept up to
/// [`STDERR_KEPT`] bytes. Returns the exit code, the bytes written and the stderr kept.
async fn drain<R, W>(r: &mut R, out: &mut W) -> std::io::Result<(i32, u64, String)>
where
    R: AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut written = 0u64;
    let mut stderr = Vec::new();
    while let Some(f) = read_frame(r).await? {
        match f.kind {
            kind::STDOUT => {
                out.write_all(&f.payload).await?;
                written += f.payload.len() as u64;
            }
            kind::STDERR | kind::ERROR => {
                let room = STDERR_KEPT.saturating_sub(stderr.len());
                stderr.extend_from_slice(&f.payload[..f.payload.len().min(room)]);
            }
            kind::EXIT => {
                let code = proto::parse_exit(&f.payload).unwrap_or(-1);
                return Ok((
                    code,
                    written,
                    String::from_utf8_lossy(&stderr).trim().into(),
                ));
            }
            _ => {}
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the stream ended before the command's exit code",
    ))
}

/// Records a new `running` backup of `a` (PostgreSQL or Redis; `scheduled`: taken by its
/// daily schedule);
/// [`capture`] fills it.
pub async fn start(
    c: &Controller,
    a: &AddonRow,
    scheduled: bool,
) -> Result<BackupRow, BackupError> {
    if a.state != super::supervisor::state::AVAILABLE {
        return Err(BackupError::NotRunning(a.name.clone(), a.state.clone()));
    }
    let b = BackupRow {
        id: format!("b{}", random_hex(6)),
        addon: a.name.clone(),
        addon_id: a.id,
        app_id: a.app_id,
        size_bytes: 0,
        state: state::RUNNING.to_string(),
        scheduled,
        error: None,
        created_at: now_rfc3339(),
        finished_at: None,
    };
    c.store.insert_backup(&b).await?;
    Ok(b)
}

/// Runs `pg_dump -Fc` in `a`'s job into the file of `b` and records how it ended.
pub async fn capture(c: &Controller, a: &AddonRow, b: &BackupRow) -> Result<u64, BackupError> {
    let res = dump_into_file(c, a, b).await;
    let now = now_rfc3339();
    match &res {
        Ok(size) => {
            c.store
                .finish_backup(&b.id, state::COMPLETED, *size, None, &now)
                .await?;
            tracing::info!(addon = %a.name, backup = %b.id, size, "backup captured");
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(file(c, b)).await;
            c.store
                .finish_backup(&b.id, state::FAILED, 0, Some(&e.to_string()), &now)
                .await?;
            tracing::warn!(addon = %a.name, backup = %b.id, "backup failed: {e}");
        }
    }
    res
}

async fn dump_into_file(c: &Controller, a: &AddonRow, b: &BackupRow) -> Result<u64, BackupError> {
    let dir = dir(c, b.addon_id);
    tokio::fs::create_dir_all(&dir).await?;
    set_mode(&dir, 0o700).await?;
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file(c, b))
        .await?;
    let (name, command) = capture_command(&a.service);
    let req = ExecRequest {
        command,
        ..Default::default()
    };
    let mut up = exec_in(c, a, req).await?;
    up.write_all(&proto::encode(kind::STDIN, &[])).await?;
    let (code, size, stderr) = drain(&mut up, &mut out).await?;
    out.sync_all().await?;
    if code != 0 {
        return Err(BackupError::Failed {
            command: name,
            code,
            stderr,
        });
    }
    Ok(size)
}

/// The program (for messages) and argv that write a backup of `service` to stdout:
/// `pg_dump -Fc` (a consistent snapshot), or `redis-cli --rdb -` (Redis makes a fresh RDB
/// snapshot and sends it, as to a replica).
pub fn capture_command(service: &str) -> (&'static str, Vec<String>) {
    match service {
        "postgresql" => (
            "pg_dump",
            vec!["pg_dump".into(), "-Fc".into(), "--no-password".into()],
        ),
        _ => (
            "redis-cli",
            vec![
                "redis-cli".into(),
                "--no-auth-warning".into(),
                "--rdb".into(),
                "-".into(),
            ],
        ),
    }
}

async fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).await
}

/// Restores backup `b` into `target` (an add-on of the same service): [`restore_pg`] or
/// [`restore_redis`]. Returns the restoring program's warnings, if any.
pub async fn restore(
    c: &Controller,
    b: &BackupRow,
    target: &AddonRow,
) -> Result<String, BackupError> {
    match target.service.as_str() {
        "postgresql" => restore_pg(c, b, target).await,
        _ => restore_redis(c, b, target).await,
    }
}

/// Streams the dump of `b` into `pg_restore --clean --if-exists --single-transaction` in
/// `target`'s job (objects are owned by the target's own user; a failure changes nothing). Returns pg_restore's warnings, if any.
async fn restore_pg(
    c: &Controller,
    b: &BackupRow,
    target: &AddonRow,
) -> Result<String, BackupError> {
    let req = ExecRequest {
        command: vec![
            "pg_restore".into(),
            "--clean".into(),
            "--if-exists".into(),
            "--no-owner".into(),
            "--no-acl".into(),
            // All or nothing: a restore that fails leaves the data as it was.
            "--single-transaction".into(),
            "--no-password".into(),
            "-d".into(),
            super::pg_database(target.id),
        ],
        ..Default::default()
    };
    let stderr = feed_file(c, b, target, req, "pg_restore").await?;
    tracing::info!(backup = %b.id, addon = %target.name, "backup restored");
    Ok(stderr)
}

/// The script that replaces a Redis add-on's data with the RDB snapshot on its stdin, run
/// in the add-on's job: the file is checked with `redis-check-rdb` (a bad one changes
/// nothing) and left as `/data/redis/restore.rdb`; then Redis is shut down without saving.
/// The job's start script (deploy/stack-service) sees `restore.rdb`, makes it `dump.rdb`,
/// removes the AOF (which would win over the RDB), starts Redis with AOF off and turns it
/// on again, so that Redis rewrites the AOF from the restored data. The script waits, at
/// most 120 s, until Redis answers with AOF on and no rewrite pending: then the restored
/// data is what a restart loads.
const REDIS_RESTORE: &str = r#"set -eu
d=/data/redis
umask 077
rm -f "$d/restore.rdb.part"
cat > "$d/restore.rdb.part"
if ! out=$(redis-check-rdb "$d/restore.rdb.part" 2>&1); then
    rm -f "$d/restore.rdb.part"
    why=$(printf '%s\n' "$out" | sed -n '/RDB ERROR DETECTED/{n;s/^\[offset [0-9]*\] //;p;q;}')
    [ -n "$why" ] || why=$(printf '%s\n' "$out" | tail -n 1)
    echo "the backup is not an RDB snapshot this Redis loads ($why); the data was not changed" >&2
    exit 3
fi
chown redis:redis "$d/restore.rdb.part"
mv -f "$d/restore.rdb.part" "$d/restore.rdb"
redis-cli --no-auth-warning shutdown nosave >/dev/null 2>&1 || true
i=0
while [ "$i" -lt 600 ]; do
    if [ ! -e "$d/restore.rdb" ] && info=$(redis-cli --no-auth-warning info persistence 2>/dev/null) &&
        printf '%s' "$info" | grep -q '^loading:0' &&
        printf '%s' "$info" | grep -q '^aof_enabled:1' &&
        printf '%s' "$info" | grep -q '^aof_rewrite_in_progress:0' &&
        printf '%s' "$info" | grep -q '^aof_rewrite_scheduled:0'; then
        exit 0
    fi
    sleep 0.2
    i=$((i + 1))
done
echo "Redis did not answer with its AOF rewritten within 120 s of the restore: see paas logs --ps addon" >&2
exit 4
"#;

/// Replaces the data of the Redis add-on `target` with the RDB snapshot `b`
/// ([`REDIS_RESTORE`]): Redis restarts inside its job (its clients reconnect), the job and
/// its address stay.
async fn restore_redis(
    c: &Controller,
    b: &BackupRow,
    target: &AddonRow,
) -> Result<String, BackupError> {
    let req = ExecRequest {
        command: vec!["sh".into(), "-c".into(), REDIS_RESTORE.into()],
        ..Default::default()
    };
    let stderr = feed_file(c, b, target, req, "the Redis restore").await?;
    tracing::info!(backup = %b.id, addon = %target.name, "backup restored");
    Ok(stderr)
}

/// Runs `req` in `target`'s job with the file of `b` as its stdin (256 KiB frames, never
/// whole in memory) and waits for its exit: its stderr, or [`BackupError::Failed`].
async fn feed_file(
    c: &Controller,
    b: &BackupRow,
    target: &AddonRow,
    req: ExecRequest,
    command: &'static str,
) -> Result<String, BackupError> {
    let mut input = tokio::fs::File::open(file(c, b)).await?;
    let up = exec_in(c, target, req).await?;
    let (mut r, mut w) = tokio::io::split(up);
    let feed = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = input.read(&mut buf).await?;
            w.write_all(&proto::encode(kind::STDIN, &buf[..n])).await?;
            if n == 0 {
                break;
            }
        }
        w.flush().await?;
        Ok::<_, std::io::Error>(w)
    };
    let mut sink = tokio::io::sink();
    let (fed, drained) = tokio::join!(feed, drain(&mut r, &mut sink));
    let (code, _, stderr) = drained?;
    // The process may exit before reading all its input (it failed): its code says why.
    if code != 0 {
        return Err(BackupError::Failed {
            command,
            code,
            stderr,
        });
    }
    fed?;
    Ok(stderr)
}

/// Deletes one backup: its file and its row.
pub async fn delete(c: &Controller, b: &BackupRow) -> Result<(), BackupError> {
    match tokio::fs::remove_file(file(c, b)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    c.store.delete_backup(&b.id).await?;
    Ok(())
}

/// Deletes every backup of `a` and its schedule (the add-on is being destroyed).
pub async fn delete_all(c: &Controller, a: &AddonRow) -> Result<(), BackupError> {
    c.store.delete_backup_schedule(&a.name).await?;
    for b in c.store.backups_of(&a.name).await? {
        delete(c, &b).await?;
    }
    match tokio::fs::remove_dir_all(dir(c, a.id)).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// `HH:MM` (UTC) as minutes after midnight.
pub fn parse_at(at: &str) -> Option<u32> {
    let (h, m) = at.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && !at.contains('+')).then_some(h * 60 + m)
}

/// `minutes` as `HH:MM`.
pub fn format_at(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Whether schedule `s` owes a backup at `now_ms`: today's time has come and it has not
/// started one since.
pub fn due(s: &ScheduleRow, now_ms: i64) -> bool {
    let slot = now_ms.div_euclid(DAY_MS) * DAY_MS + i64::from(s.at_minute) * 60_000;
    now_ms >= slot && s.last_run_ms < slot
}

/// The scheduled backups of `backups` past the newest `keep` completed ones (oldest first).
pub fn beyond_retention(backups: &[BackupRow], keep: u32) -> Vec<BackupRow> {
    let mut done: Vec<&BackupRow> = backups
        .iter()
        .filter(|b| b.scheduled && b.state == state::COMPLETED)
        .collect();
    done.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    let extra = done.len().saturating_sub(keep as usize);
    done.into_iter().take(extra).cloned().collect()
}

/// The leader's part of the add-on loop: starts the daily backups that are due (of
/// add-ons that are available; others wait for their next pass) and, once one completed,
/// deletes the scheduled ones past the schedule's retention count.
pub async fn scheduled_pass(c: &Arc<Controller>, addons: &[AddonRow]) -> Result<(), StoreError> {
    let now = unix_ms();
    for s in c.store.backup_schedules().await? {
        let Some(a) = addons.iter().find(|a| a.name == s.addon) else {
            c.store.delete_backup_schedule(&s.addon).await?;
            continue;
        };
        if !due(&s, now) || a.state != super::supervisor::state::AVAILABLE {
            continue;
        }
        let b = match start(c, a, true).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(addon = %a.name, "scheduled backup: {e}");
                continue;
            }
        };
        c.store.schedule_ran(&s.addon, now).await?;
        let (c, a) = (Arc::clone(c), a.clone());
        tokio::spawn(async move {
            if capture(&c, &a, &b).await.is_err() {
                return;
            }
            let old = match c.store.backups_of(&a.name).await {
                Ok(all) => beyond_retention(&all, s.keep),
                Err(e) => {
                    tracing::warn!(addon = %a.name, "backup retention: {e}");
                    return;
                }
            };
            for b in old {
                if let Err(e) = delete(&c, &b).await {
                    tracing::warn!(addon = %a.name, backup = %b.id, "backup retention: {e}");
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, created: &str, scheduled: bool, state: &str) -> BackupRow {
        BackupRow {
            id: id.into(),
            addon: "postgresql-shop-1a2b".into(),
            addon_id: 1,
            app_id: 1,
            size_bytes: 10,
            state: state.into(),
            scheduled,
            error: None,
            created_at: created.into(),
            finished_at: None,
        }
    }

    #[test]
    fn times_of_day_parse_as_utc_minutes() {
        assert_eq!(parse_at("02:00"), Some(120));
        assert_eq!(parse_at("23:59"), Some(1439));
        assert_eq!(format_at(125), "02:05");
        for bad in ["24:00", "2", "02:60", "x:10", "-1:00", "+1:00"] {
            assert_eq!(parse_at(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_schedule_is_due_once_a_day_after_its_time() {
        let day = 20_000 * DAY_MS;
        let mut s = ScheduleRow {
            addon: "a".into(),
            at_minute: 120,
            keep: 7,
            last_run_ms: day - DAY_MS + 120 * 60_000,
        };
        assert!(!due(&s, day + 119 * 60_000), "before 02:00");
        assert!(due(&s, day + 120 * 60_000), "at 02:00");
        assert!(
            due(&s, day + 600 * 60_000),
            "later the same day (controller was down)"
        );
        s.last_run_ms = day + 121 * 60_000;
        assert!(!due(&s, day + 600 * 60_000), "ran today");
        assert!(due(&s, day + DAY_MS + 120 * 60_000), "the next day");
    }

    #[test]
    fn retention_deletes_only_the_oldest_completed_scheduled_backups() {
        let all = [
            backup("b1", "2026-12-01T02:00:00Z", true, state::COMPLETED),
            backup("b2", "2026-12-02T02:00:00Z", true, state::FAILED),
            backup("b3", "2026-12-02T09:00:00Z", false, state::COMPLETED),
            backup("b4", "2026-12-03T02:00:00Z", true, state::COMPLETED),
            backup("b5", "2026-12-04T02:00:00Z", true, state::COMPLETED),
        ];
        let ids = |v: Vec<BackupRow>| v.into_iter().map(|b| b.id).collect::<Vec<_>>();
        assert_eq!(ids(beyond_retention(&all, 2)), ["b1"]);
        assert_eq!(ids(beyond_retention(&all, 1)), ["b1", "b4"]);
        assert!(beyond_retention(&all, 7).is_empty());
    }
}
