//! Tests of the Dockerfile parser.

use super::*;

fn only(text: &str) -> Instruction {
    let d = parse(&format!("FROM tiny\n{text}\n")).unwrap();
    assert_eq!(d.instructions.len(), 2, "{d:?}");
    d.instructions[1].instruction.clone()
}

fn fails(text: &str) -> ParseError {
    parse(text).unwrap_err()
}

#[test]
fn a_multi_stage_file_reads_with_lines_and_stages() {
    let d = parse(
        "# syntax=docker/dockerfile:1\n\
         ARG GO=1.19\n\
         \n\
         from bookworm AS Build\n\
         WORKDIR /src\n\
         # a comment\n\
         COPY --chown=app:app *.go go.mod ./\n\
         RUN go build -o /out/hello . && \\\n\
         # inside a continuation\n\
         \n    strip /out/hello\n\
         FROM tiny\n\
         COPY --from=build /out/hello /bin/hello\n\
         CMD [\"/bin/hello\"]\n",
    )
    .unwrap();
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    let lines: Vec<usize> = d.instructions.iter().map(|l| l.line).collect();
    assert_eq!(lines, vec![2, 4, 5, 7, 8, 12, 13, 14]);
    assert_eq!(
        d.instructions[1].instruction,
        Instruction::From {
            image: "bookworm".into(),
            stage: Some("build".into())
        }
    );
    assert_eq!(
        d.instructions[4].instruction,
        Instruction::Run(Command::Shell(
            "go build -o /out/hello . &&     strip /out/hello".into()
        ))
    );
    assert_eq!(
        d.instructions[4].text,
        "RUN go build -o /out/hello . &&     strip /out/hello"
    );
    match &d.instructions[3].instruction {
        Instruction::Copy(c) => {
            assert_eq!(c.chown.as_deref(), Some("app:app"));
            assert_eq!(c.sources, vec!["*.go", "go.mod"]);
            assert_eq!(c.dest, "./");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.instructions[7].instruction,
        Instruction::Cmd(Command::Exec(vec!["/bin/hello".into()]))
    );
}

#[test]
fn the_escape_directive_changes_the_continuation_character() {
    let d = parse("# escape=`\nFROM tiny\nRUN echo a `\n  b\nCOPY c:\\dir /x\n").unwrap();
    assert_eq!(d.escape, '`');
    assert_eq!(
        d.instructions[1].instruction,
        Instruction::Run(Command::Shell("echo a   b".into()))
    );
    // A directive after the first instruction is a comment.
    let d = parse("FROM tiny\n# escape=`\nRUN a \\\n b\n").unwrap();
    assert_eq!(d.escape, '\\');
    assert_eq!(fails("# escape=x\nFROM tiny\n").line, 1);
    assert!(fails("# escape=`\n# escape=\\\nFROM tiny\n")
        .why
        .contains("twice"));
}

#[test]
fn json_and_shell_forms() {
    assert_eq!(
        only(r#"RUN ["/bin/sh", "-c", "echo hi"]"#),
        Instruction::Run(Command::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo hi".into()
        ]))
    );
    // Not valid JSON: Docker runs it as a shell command.
    assert_eq!(
        only("CMD [not json]"),
        Instruction::Cmd(Command::Shell("[not json]".into()))
    );
    assert_eq!(
        only("ENTRYPOINT exec ./server"),
        Instruction::Entrypoint(Command::Shell("exec ./server".into()))
    );
    assert_eq!(
        only(r#"SHELL ["/bin/bash", "-euo", "pipefail", "-c"]"#),
        Instruction::Shell(vec![
            "/bin/bash".into(),
            "-euo".into(),
            "pipefail".into(),
            "-c".into()
        ])
    );
    assert!(fails("FROM tiny\nSHELL /bin/bash -c\n")
        .why
        .contains("JSON"));
    match only(r#"COPY ["a b.txt", "/dst/"]"#) {
        Instruction::Copy(c) => {
            assert_eq!(c.sources, vec!["a b.txt"]);
            assert_eq!(c.dest, "/dst/");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn env_label_and_arg_forms() {
    assert_eq!(
        only(r#"ENV A=1 B="two words" C=${A}x"#),
        Instruction::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "${A}x".into()),
        ])
    );
    assert_eq!(
        only("ENV LEGACY value with spaces"),
        Instruction::Env(vec![("LEGACY".into(), "value with spaces".into())])
    );
    assert_eq!(
        only(r#"LABEL org.opencontainers.image.title="my app""#),
        Instruction::Label(vec![(
            "org.opencontainers.image.title".into(),
            "\"my app\"".into()
        )])
    );
    assert_eq!(
        only("ARG A B=2"),
        Instruction::Arg(vec![("A".into(), None), ("B".into(), Some("2".into()))])
    );
    assert!(fails("FROM tiny\nENV A=1 B\n").why.contains("no `=`"));
    assert!(fails("FROM tiny\nENV ONLYKEY\n")
        .why
        .contains("needs a value"));
    assert!(fails("FROM tiny\nARG 1X\n")
        .why
        .contains("not a valid name"));
}

#[test]
fn healthcheck_forms() {
    assert_eq!(only("HEALTHCHECK NONE"), Instruction::Healthcheck(None));
    assert_eq!(
        only("HEALTHCHECK --interval=1m30s --timeout=5s --retries=4 CMD curl -f http://localhost/"),
        Instruction::Healthcheck(Some(HealthSpec {
            command: Command::Shell("curl -f http://localhost/".into()),
            interval: Some(90),
            timeout: Some(5),
            start_period: None,
            retries: Some(4),
        }))
    );
    assert!(fails("FROM tiny\nHEALTHCHECK --interval=soon CMD true\n")
        .why
        .contains("duration"));
    assert!(fails("FROM tiny\nHEALTHCHECK curl x\n").why.contains("CMD"));
    assert_eq!(duration_secs("500ms"), Some(1));
    assert_eq!(duration_secs("1h"), Some(3600));
    assert_eq!(duration_secs("10"), None);
}

#[test]
fn what_paas_does_not_do_is_refused_naming_the_line() {
    let e = fails("FROM tiny\n\nONBUILD RUN make\n");
    assert_eq!(e.line, 3);
    assert!(e.why.contains("ONBUILD"), "{e}");
    let e = fails("FROM --platform=linux/arm64 tiny\n");
    assert!(e.why.contains("--platform"), "{e}");
    let e = fails("FROM tiny\nRUN <<EOF\necho hi\nEOF\n");
    assert_eq!(e.line, 2);
    assert!(e.why.contains("heredoc"), "{e}");
    let e = fails("FROM tiny\nRUN --mount=type=cache,target=/root/.cache pip install x\n");
    assert!(e.why.contains("BuildKit"), "{e}");
    let e = fails("FROM tiny\nCOPY x \\\n  y \\\n  z\nFROB x\n");
    assert_eq!(e.line, 5);
    assert!(e.why.contains("unknown instruction `FROB`"), "{e}");
    assert_eq!(e.to_string().split(':').next(), Some("Dockerfile line 5"));
    let e = fails("ADD --checksum=sha256:00 https://x/y /y\n");
    assert_eq!(e.line, 1);
    assert!(fails("RUN true\n").why.contains("start with FROM"));
    assert!(fails("# only a comment\n").why.contains("no instructions"));
    assert!(fails("FROM tiny AS 9x\n").why.contains("stage name"));
    assert!(fails("FROM tiny\nCOPY onlyone\n")
        .why
        .contains("destination"));
    assert!(fails("FROM tiny\nCOPY --from /x /y\n")
        .why
        .contains("needs a value"));
    assert!(fails("FROM tiny\nADD --from=a x /y\n")
        .why
        .contains("not supported"));
    // Shift operators are not heredocs.
    assert_eq!(
        only("RUN echo $((1<<2))"),
        Instruction::Run(Command::Shell("echo $((1<<2))".into()))
    );
}

#[test]
fn windows_line_ends_and_a_bom_are_read() {
    let d = parse("\u{feff}FROM tiny\r\nRUN echo a \\\r\n b\r\n").unwrap();
    assert_eq!(
        d.instructions[1].instruction,
        Instruction::Run(Command::Shell("echo a  b".into()))
    );
}

proptest::proptest! {
    /// Whatever the text, parsing never panics, and an error names a line of the file.
    #[test]
    fn any_text_parses_or_names_a_line(text in "[ -~\n\\\\#]{0,200}") {
        if let Err(e) = parse(&text) {
            proptest::prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1));
        }
    }
}
