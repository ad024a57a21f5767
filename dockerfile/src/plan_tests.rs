//! Tests of the build plan: stages, ARG/ENV expansion, image config and cache inputs.

use super::*;
use crate::parse::parse;

/// Stacks `tiny` and `bookworm` (PATH set), and `apps/base:v3`.
struct Fixed;

impl Bases for Fixed {
    fn resolve(&self, image: &str) -> Result<BaseImage, String> {
        let config = ImageConfig {
            env: vec!["PATH=/usr/bin:/bin".into()],
            working_dir: "/".into(),
            ..ImageConfig::default()
        };
        match image {
            "tiny" | "bookworm" | "apps/base:v3" => Ok(BaseImage {
                reference: image.into(),
                digest: format!("sha256:{image}"),
                config,
            }),
            _ => Err(format!(
                "`{image}` is not a stack (tiny, bookworm) or an image in paas's registry"
            )),
        }
    }
}

fn planned(text: &str, args: &[(&str, &str)]) -> Result<Plan, PlanError> {
    let args = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    plan(&parse(text).unwrap(), &args, &Fixed)
}

#[test]
fn multi_stage_keeps_only_the_needed_stages_and_renumbers_them() {
    let p = planned(
        "FROM bookworm AS unused\nRUN false\n\
         FROM bookworm AS build\nWORKDIR /src\nCOPY . .\nRUN go build -o /out/app .\n\
         FROM tiny\nCOPY --from=build /out/app /bin/app\nEXPOSE 8080\nCMD [\"/bin/app\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[0].name.as_deref(), Some("build"));
    assert_eq!(p.step_count(), 2 + 3 + 3);
    match &p.stages[0].steps[1].action {
        Action::Copy { sources, dest, .. } => {
            assert_eq!(sources, &vec![".".to_string()]);
            assert_eq!(dest, "/src/");
        }
        other => panic!("{other:?}"),
    }
    match &p.stages[0].steps[2].action {
        Action::Run { argv, workdir, .. } => {
            assert_eq!(argv, &vec!["/bin/sh", "-c", "go build -o /out/app ."]);
            assert_eq!(workdir, "/src");
        }
        other => panic!("{other:?}"),
    }
    match &p.stages[1].steps[0].action {
        Action::Copy { from, dest, .. } => {
            assert_eq!(from, &CopyFrom::Stage(0));
            assert_eq!(dest, "/bin/app");
        }
        other => panic!("{other:?}"),
    }
    let last = &p.stages[1].config;
    assert_eq!(last.cmd, Some(vec!["/bin/app".to_string()]));
    assert_eq!(last.first_tcp_port(), Some(8080));
    // A stage FROM another stage starts from its config.
    let p = planned("FROM tiny AS a\nENV X=1\nFROM a\nRUN true\n", &[]).unwrap();
    assert_eq!(p.stages[1].from, StageBase::Stage(0));
    assert_eq!(p.stages[1].config.env_value("X"), Some("1"));
}

#[test]
fn args_and_env_expand_as_docker_expands_them() {
    let text = "ARG BASE=tiny\nARG VERSION=1.0\nFROM ${BASE}\n\
                RUN echo $VERSION\nARG VERSION\nARG MODE=dev\n\
                ENV APP_VERSION=${VERSION} MODE=prod\nRUN echo build\n\
                LABEL v=\"$APP_VERSION-$MODE\"\nWORKDIR /srv/$MODE\nWORKDIR sub\n";
    let p = planned(text, &[]).unwrap();
    let s = &p.stages[0];
    // Before `ARG VERSION` in the stage, the global is not seen (nor in RUN's env).
    match &s.steps[0].action {
        Action::Run { env, .. } => assert!(!env.iter().any(|e| e.starts_with("VERSION="))),
        other => panic!("{other:?}"),
    }
    match &s.steps[4].action {
        Action::Run { env, .. } => {
            assert!(env.contains(&"VERSION=1.0".to_string()), "{env:?}");
            // ENV wins over the ARG of the same name.
            assert!(env.contains(&"MODE=prod".to_string()));
            assert!(!env.contains(&"MODE=dev".to_string()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.config.labels.get("v").map(String::as_str),
        Some("1.0-prod")
    );
    assert_eq!(s.config.working_dir, "/srv/prod/sub");
    assert!(!s.config.env.iter().any(|e| e.starts_with("VERSION=")));
    assert!(p.used_args.is_empty());

    // Build args (the app's config vars) override defaults, global and in-stage.
    let p = planned(
        text,
        &[("BASE", "bookworm"), ("MODE", "ci"), ("OTHER", "x")],
    )
    .unwrap();
    match &p.stages[0].from {
        StageBase::Image(b) => assert_eq!(b.reference, "bookworm"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.used_args,
        vec![
            ("BASE".to_string(), "bookworm".to_string()),
            ("MODE".to_string(), "ci".to_string())
        ]
    );
}

#[test]
fn cmd_entrypoint_shell_and_config_fields() {
    let p = planned(
        "FROM tiny\nCMD [\"inherited\"]\nFROM tiny\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\n\
         RUN make\nCMD serve --port 1\nENTRYPOINT [\"/entry\"]\nUSER app:app\nSTOPSIGNAL SIGINT\n\
         EXPOSE 53/udp 9000-9002\nHEALTHCHECK --interval=5s CMD wget -qO- localhost:9000/health\n\
         VOLUME [\"/data\"]\nMAINTAINER someone\n",
        &[],
    )
    .unwrap();
    assert_eq!(p.stages.len(), 1, "the first stage is not needed");
    let s = &p.stages[0];
    match &s.steps[1].action {
        Action::Run { argv, .. } => assert_eq!(argv[0], "/bin/ash"),
        other => panic!("{other:?}"),
    }
    let c = &s.config;
    // CMD was set in this stage before ENTRYPOINT: kept.
    assert_eq!(
        c.cmd,
        Some(vec![
            "/bin/ash".to_string(),
            "-eo".into(),
            "pipefail".into(),
            "-c".into(),
            "serve --port 1".into()
        ])
    );
    assert_eq!(c.entrypoint, Some(vec!["/entry".to_string()]));
    assert_eq!(c.user, "app:app");
    assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(
        c.exposed_ports,
        vec!["53/udp", "9000/tcp", "9001/tcp", "9002/tcp"]
    );
    assert_eq!(c.first_tcp_port(), Some(9000));
    let h = c.healthcheck.as_ref().unwrap();
    assert_eq!(h.test[0], "CMD-SHELL");
    assert_eq!(h.interval_secs, Some(5));
    assert_eq!(c.volumes, vec!["/data"]);
    assert_eq!(
        c.labels.get("maintainer").map(String::as_str),
        Some("someone")
    );
    // ENTRYPOINT in a stage whose CMD is inherited resets it, as Docker does.
    let p = planned(
        "FROM tiny AS a\nCMD [\"x\"]\nFROM a\nENTRYPOINT [\"/e\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(p.stages[1].config.cmd, None);
}

#[test]
fn bad_references_and_values_name_their_line() {
    let e = planned("FROM tiny\nRUN true\nFROM nosuch/image:1\n", &[]).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.why.contains("nosuch/image:1"), "{e}");
    let e = planned(
        "FROM tiny\nCOPY --from=later /x /y\nFROM tiny AS later\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.why.contains("no earlier stage"), "{e}");
    let e = planned("FROM tiny\nADD https://example.invalid/x.tgz /x\n", &[]).unwrap_err();
    assert!(e.why.contains("does not download URLs"), "{e}");
    let e = planned("FROM tiny\nCOPY a b /dst\n", &[]).unwrap_err();
    assert!(e.why.contains("must be a directory"), "{e}");
    let e = planned("FROM tiny\nEXPOSE http\n", &[]).unwrap_err();
    assert!(e.why.contains("EXPOSE http"), "{e}");
    let e = planned("FROM tiny\nSTOPSIGNAL SIGNOPE\n", &[]).unwrap_err();
    assert!(e.why.contains("not a signal"), "{e}");
    let e = planned("FROM tiny\nCOPY --chmod=999 a /b\n", &[]).unwrap_err();
    assert!(e.why.contains("octal"), "{e}");
    let e = planned("FROM tiny AS a\nFROM tiny AS a\n", &[]).unwrap_err();
    assert!(e.why.contains("two stages"), "{e}");
    let e = planned("ARG TAG\nFROM ${TAG:?set-TAG-to-a-stack}\n", &[]).unwrap_err();
    assert!(e.why.contains("set-TAG-to-a-stack"), "{e}");
}

#[test]
fn copy_destinations_and_globs() {
    let p = planned(
        "FROM tiny\nWORKDIR /app\nCOPY *.txt ./\nCOPY *.go src\nCOPY a b ./dir/\nCOPY f .\nADD --chown=1000:1000 site.tar.gz /srv/\n",
        &[],
    )
    .unwrap();
    let dests: Vec<(String, Option<String>, bool)> = p.stages[0]
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Copy {
                dest,
                chown,
                unpack,
                ..
            } => Some((dest.clone(), chown.clone(), *unpack)),
            _ => None,
        })
        .collect();
    assert_eq!(
        dests,
        vec![
            ("/app/".to_string(), None, false),
            ("/app/src/".to_string(), None, false),
            ("/app/dir/".to_string(), None, false),
            ("/app/".to_string(), None, false),
            ("/srv/".to_string(), Some("1000:1000".to_string()), true),
        ]
    );
}

#[test]
fn cache_keys_change_with_parent_input_and_files() {
    let files = vec![("a".to_string(), "h1".to_string())];
    let k = cache_key("p", "COPY a /a", &files);
    assert_eq!(k, cache_key("p", "COPY a /a", &files));
    assert_ne!(k, cache_key("q", "COPY a /a", &files));
    assert_ne!(k, cache_key("p", "COPY a /b", &files));
    assert_ne!(
        k,
        cache_key("p", "COPY a /a", &[("a".to_string(), "h2".to_string())])
    );
    // Field boundaries count: ("ab", "c") is not ("a", "bc").
    assert_ne!(cache_key("ab", "c", &[]), cache_key("a", "bc", &[]));
    // A build arg a RUN sees is part of its input; one it does not see is not.
    let with = |v: &str| planned("FROM tiny\nARG V\nRUN make\n", &[("V", v)]).unwrap();
    assert_ne!(
        with("1").stages[0].steps[1].cache_input,
        with("2").stages[0].steps[1].cache_input
    );
    let without = |v: &str| planned("FROM tiny\nRUN make\n", &[("V", v)]).unwrap();
    assert_eq!(
        without("1").stages[0].steps[0].cache_input,
        without("2").stages[0].steps[0].cache_input
    );
}

#[test]
fn secret_looking_args_are_hidden() {
    assert_eq!(shown_arg("NPM_TOKEN", "abc"), "NPM_TOKEN=(hidden)");
    assert_eq!(
        shown_arg("DATABASE_URL", "postgres://u:p@h/d"),
        "DATABASE_URL=(hidden)"
    );
    assert_eq!(shown_arg("GO_VERSION", "1.19"), "GO_VERSION=1.19");
}
