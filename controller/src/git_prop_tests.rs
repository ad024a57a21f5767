//! Property tests of the git command lines the controller reads (part of the bounded fuzz
//! run, tests/fuzz.sh `git`): the pkt-lines of a receive-pack request (`parse_commands`,
//! and the refusal report made from them), the push body feeder's limit, the repository
//! name of a git URL, the service a ref advertisement asks for, and the pre-receive hook's
//! `old new ref` lines (`hook::parse_refs`, `hook::decide`). Any input: never a panic; what
//! is accepted meets the rule; every answer over HTTP is below 500.
//! `PROPTEST_CASES` sets the number of cases.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use http::Request;
use proptest::prelude::*;
use tower::ServiceExt;

use super::{app_name, feed, parse_commands, pkt, refusal_report, COMMANDS_PREFIX};
use crate::config::Settings;
use crate::hook::{decide, parse_refs, Decision};
use crate::state::Controller;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Largest payload of one pkt-line (git's LARGE_PACKET_DATA_MAX).
const MAX_PKT_DATA: usize = 65516;

fn oid() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{40}", Just("0".repeat(40)), "[0-9a-f]{64}",]
}

fn ref_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("refs/heads/main".to_string()),
        Just("refs/heads/master".to_string()),
        "refs/(heads|tags)/[A-Za-z0-9._/-]{1,40}",
        // Nearly what one pkt-line can carry (with the capabilities on the first line).
        (60_000usize..65_300).prop_map(|n| format!("refs/heads/{}", "x".repeat(n))),
    ]
}

fn caps() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "report-status",
            "report-status-v2",
            "side-band-64k",
            "side-band",
            "quiet",
            "atomic",
            "ofs-delta",
            "agent=git/2.39.5",
            "object-format=sha1",
        ]),
        0..6,
    )
    .prop_map(|c| c.join(" "))
}

/// A request body as git writes it: the commands (capabilities after a NUL on the first),
/// a flush, then the pack.
fn request() -> impl Strategy<Value = (Vec<(String, String, String)>, String, Vec<u8>)> {
    (
        prop::collection::vec((oid(), oid(), ref_name()), 1..4),
        caps(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(cmds, caps, pack)| {
            let mut body = Vec::new();
            for (i, (old, new, name)) in cmds.iter().enumerate() {
                let mut line = format!("{old} {new} {name}").into_bytes();
                if i == 0 {
                    line.push(0);
                    line.extend_from_slice(caps.as_bytes());
                }
                line.push(b'\n');
                body.extend(pkt(&line));
            }
            body.extend_from_slice(b"0000PACK");
            body.extend(pack);
            (cmds, caps, body)
        })
}

/// Splits `data` into pkt-lines, checking each: four lower-case hex digits, 0 (flush) or
/// 4 + a payload of at most [`MAX_PKT_DATA`] bytes. `None` (with why) when it is not that.
fn pkt_lines(mut data: &[u8]) -> Result<Vec<Option<Vec<u8>>>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let head = data.get(..4).ok_or("a cut length")?;
        if !head
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return Err(format!("length {:?}", String::from_utf8_lossy(head)));
        }
        let len = usize::from_str_radix(std::str::from_utf8(head).unwrap(), 16).unwrap();
        if len == 0 {
            out.push(None);
            data = &data[4..];
            continue;
        }
        if len < 4 || len - 4 > MAX_PKT_DATA {
            return Err(format!("length {len}"));
        }
        let payload = data
            .get(4..len)
            .ok_or(format!("length {len} past the end"))?;
        out.push(Some(payload.to_vec()));
        data = &data[len..];
    }
    Ok(out)
}

/// The report-status lines of a refusal: demuxed from side-band 1 when the client asked
/// for side-band, else as they are.
fn report_lines(out: &[u8], sideband: bool) -> Result<Vec<String>, String> {
    let outer = pkt_lines(out)?;
    let inner = if sideband {
        let mut band1 = Vec::new();
        for p in outer.into_iter().flatten() {
            match p.first() {
                Some(1) => band1.extend_from_slice(&p[1..]),
                Some(2) | Some(3) => {}
                other => return Err(format!("side-band {other:?}")),
            }
        }
        pkt_lines(&band1)?
    } else {
        outer
    };
    Ok(inner
        .into_iter()
        .flatten()
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .collect())
}

/// One controller for the HTTP cases.
fn api() -> &'static (tokio::runtime::Runtime, tempfile::TempDir, Arc<Controller>) {
    static API: OnceLock<(tokio::runtime::Runtime, tempfile::TempDir, Arc<Controller>)> =
        OnceLock::new();
    API.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::new(
            dir.path().to_path_buf(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        let c = rt.block_on(Controller::open(settings)).unwrap();
        (rt, dir, c)
    })
}

/// A path segment a git client (or an attacker) might put where the repository goes.
fn repo_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{1,29}(\\.git)?",
        "[A-Za-z0-9._%-]{0,40}",
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("a%2fb.git".to_string()),
        Just("web.git.git".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn ac4_any_bytes_as_commands_never_panic(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(
                prop_oneof![
                    "[0-9a-f]{4}".prop_map(String::into_bytes),
                    Just(b"0000".to_vec()),
                    Just(b"0001".to_vec()),
                    Just(b"0003".to_vec()),
                    Just(b"+00a".to_vec()),
                    Just(b"ffff".to_vec()),
                    "\\PC{0,20}".prop_map(String::into_bytes),
                    Just(vec![0u8]),
                ],
                0..20,
            )
            .prop_map(|parts| parts.concat()),
        ],
        reason in "\\PC{0,60}",
    ) {
        let _ = parse_commands(&data);
        if let Some(out) = refusal_report(&data, &reason) {
            prop_assert!(pkt_lines(&out).is_ok(), "{:?}", pkt_lines(&out));
        }
    }

    #[test]
    fn ac4_pkt_lines_near_and_past_the_maximum(
        declared in 0xff00usize..=0xffff,
        reason in "[ -~]{1,60}",
        sideband in any::<bool>(),
    ) {
        // One command line as long as it says, its ref name padded to that length.
        let caps = if sideband { "report-status side-band-64k" } else { "report-status" };
        let head = format!("{} {} refs/heads/", "0".repeat(40), "1".repeat(40));
        let pad = declared - 4 - head.len() - 1 - caps.len();
        let mut data = format!("{declared:04x}{head}{}\0{caps}", "x".repeat(pad)).into_bytes();
        data.extend_from_slice(b"0000");
        let parsed = parse_commands(&data);
        // git's maximum is 65520 (0xfff0) with the length digits: longer is not a pkt-line.
        prop_assert_eq!(parsed.is_some(), declared <= 0xfff0);
        if let Some(out) = refusal_report(&data, &reason) {
            let lines = report_lines(&out, sideband)
                .map_err(|e| TestCaseError::fail(format!("not pkt-lines: {e}")))?;
            prop_assert!(lines.iter().any(|l| l.starts_with("ng refs/heads/x")));
        }
    }

    #[test]
    fn ac4_commands_are_read_as_git_writes_them((cmds, caps, body) in request()) {
        let prefix = &body[..body.len().min(COMMANDS_PREFIX)];
        match parse_commands(prefix) {
            Some((refs, got_caps)) => {
                let want: Vec<&str> = cmds.iter().map(|(_, _, r)| r.as_str()).collect();
                prop_assert_eq!(refs, want);
                prop_assert_eq!(got_caps, caps.trim());
            }
            // Only when the commands do not fit the prefix the feeder keeps.
            None => prop_assert!(body.len() > COMMANDS_PREFIX),
        }
    }

    #[test]
    fn ac4_refusals_are_well_formed_and_name_every_ref(
        (cmds, caps, body) in request(),
        reason in "[ -~]{1,80}",
    ) {
        let prefix = &body[..body.len().min(COMMANDS_PREFIX)];
        let Some(out) = refusal_report(prefix, &reason) else {
            // No report: the caller answers 413 instead, which is always well-formed.
            return Ok(());
        };
        let caps: Vec<&str> = caps.split(' ').collect();
        prop_assert!(caps.contains(&"report-status") || caps.contains(&"report-status-v2"));
        let sideband = caps.contains(&"side-band-64k") || caps.contains(&"side-band");
        let lines = report_lines(&out, sideband)
            .map_err(|e| TestCaseError::fail(format!("not pkt-lines: {e}")))?;
        let unpack = format!("unpack {reason}\n");
        prop_assert_eq!(lines.first(), Some(&unpack));
        for (_, _, r) in &cmds {
            let ng = format!("ng {r} {reason}\n");
            prop_assert!(lines.contains(&ng), "no {:?}", &ng[..ng.len().min(80)]);
        }
    }

    #[test]
    fn ac4_the_feeder_never_passes_its_limit(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..5000), 0..8),
        max in 0u64..20_000,
    ) {
        let data = chunks.concat();
        let mut sink = Vec::new();
        let fed = feed(&data[..], &mut sink, max);
        prop_assert!(sink.len() as u64 <= max);
        prop_assert_eq!(fed.exceeded, data.len() as u64 > max);
        if !fed.exceeded {
            prop_assert_eq!(&sink, &data);
            prop_assert_eq!(&fed.prefix[..], &data[..data.len().min(COMMANDS_PREFIX)]);
        }
    }

    #[test]
    fn ac4_repository_names_are_app_names(repo in prop_oneof![repo_segment(), any::<String>()]) {
        if let Ok(name) = app_name(&repo) {
            prop_assert!(paas_api::names::validate_app_name(name).is_ok());
            prop_assert!(repo == name || repo == format!("{name}.git"), "{repo:?} -> {name:?}");
        }
    }

    #[test]
    fn ac4_hook_deploys_only_main_or_master_commits(
        input in prop_oneof![
            "\\PC{0,200}",
            prop::collection::vec(
                (
                    prop_oneof![oid(), "\\PC{0,12}", Just("--output=/tmp/x".to_string())],
                    prop_oneof![oid(), "\\PC{0,12}", Just("--remote=x".to_string()), Just("HEAD~1".to_string())],
                    prop_oneof![ref_name(), Just("refs/heads/main".to_string()), "\\PC{0,20}"],
                ),
                0..4,
            )
            .prop_map(|lines| lines
                .into_iter()
                .map(|(a, b, c)| format!("{a} {b} {c}\n"))
                .collect::<String>()),
        ],
    ) {
        let refs = parse_refs(&input);
        match decide(&refs) {
            Decision::Deploy { rev, name } => {
                prop_assert!(name == "refs/heads/main" || name == "refs/heads/master");
                prop_assert!(
                    (rev.len() == 40 || rev.len() == 64)
                        && rev.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                        && rev.bytes().any(|b| b != b'0'),
                    "the hook would run git archive on {rev:?}"
                );
                prop_assert_eq!(refs.len(), 1);
            }
            Decision::Refuse(message) => prop_assert!(!message.is_empty()),
            Decision::Nothing => prop_assert!(refs.is_empty()),
        }
    }

    #[test]
    fn ac4_git_requests_get_an_answer_below_500(
        repo in repo_segment(),
        service in prop_oneof![
            Just("git-receive-pack".to_string()),
            Just("git-upload-pack".to_string()),
            "\\PC{0,20}",
        ],
        endpoint in 0usize..3,
        who in 0usize..3,
    ) {
        let (rt, _dir, c) = api();
        let (method, path) = match endpoint {
            0 => ("GET", format!("/git/{repo}/info/refs?service={service}")),
            1 => ("POST", format!("/git/{repo}/git-receive-pack")),
            _ => ("POST", format!("/git/{repo}/git-upload-pack")),
        };
        let Ok(uri) = path.parse::<http::Uri>() else { return Ok(()) };
        let mut req = Request::builder().method(method).uri(uri);
        match who {
            0 => {}
            1 => req = req.header("authorization", format!("Bearer {}", c.tokens.node())),
            _ => req = req.header("authorization", format!("Bearer {}", c.tokens.admin())),
        }
        let req = req.body(Body::from(b"0000".to_vec())).unwrap();
        let app = crate::http::app(Arc::clone(c));
        let (status, text) = rt.block_on(async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        prop_assert!(!status.is_server_error(), "{method} {path}: {status} {text}");
        match who {
            // No credentials: asked for them, before anything else (but a path that does
            // not decode to UTF-8 is refused even before that).
            0 => prop_assert!(
                status.as_u16() == 401 || (status.as_u16() == 400 && repo.contains('%')),
                "{method} {path}: {status} {text}"
            ),
            // A node token never pushes.
            1 => prop_assert!(status.as_u16() == 403 || status.as_u16() == 400, "{method} {path}: {status}"),
            _ => {
                // Only a receive-pack advertisement of a valid name succeeds.
                if status.is_success() {
                    let receive = endpoint == 1 || (endpoint == 0 && service == "git-receive-pack");
                    prop_assert!(receive && app_name(&repo).is_ok(), "{method} {path}: {status}");
                }
            }
        }
    }
}
