//! From parsed instructions to a build plan: the stages the last stage needs (as BuildKit,
//! unused stages are skipped), each step with its words expanded (ARG and ENV as Docker
//! expands them), the image config each stage ends with, and the chain of cache keys.
//!
//! Build args: an `ARG` before the first FROM is global (FROM lines see it; a stage sees
//! it after `ARG NAME` redeclares it); an `ARG` in a stage is seen from there to the end
//! of the stage. Its value is the build arg of that name when one is given (paas: the
//! app's config var), else its default. ENV wins over ARG of the same name. ARGs are in
//! RUN's environment but not in the image. `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH`,
//! `BUILDPLATFORM`, `BUILDOS`, `BUILDARCH` are predefined (linux/amd64).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::parse::{Command, CopySpec, Dockerfile, HealthSpec, Instruction, Located};
use crate::words;

/// Why a Dockerfile cannot be built (before anything runs), with the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {why}")]
pub struct PlanError {
    pub line: usize,
    pub why: String,
}

/// The health check of an image config (Docker's `Healthcheck`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `["CMD", argv…]` or `["CMD-SHELL", "cmd"]`; `["NONE"]` turns an inherited one off.
    pub test: Vec<String>,
    pub interval_secs: Option<u64>,
    pub timeout_secs: Option<u64>,
    pub start_period_secs: Option<u64>,
    pub retries: Option<u32>,
}

/// What an image's config says (the OCI config fields a Dockerfile sets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `KEY=VALUE`, in order.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    /// `80/tcp`, `53/udp`, in the order EXPOSE named them.
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub volumes: Vec<String>,
    pub healthcheck: Option<Health>,
}

impl ImageConfig {
    /// The value of `key` in `env`.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.iter().rev().find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    fn set_env(&mut self, key: &str, value: &str) {
        self.env
            .retain(|kv| kv.split_once('=').map_or(kv != key, |(k, _)| k != key));
        self.env.push(format!("{key}={value}"));
    }

    /// The first EXPOSEd TCP port (what `PORT` defaults to).
    pub fn first_tcp_port(&self) -> Option<u16> {
        self.exposed_ports.iter().find_map(|p| {
            let (n, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            if proto == "tcp" {
                n.parse().ok()
            } else {
                None
            }
        })
    }
}

/// A base image the builder found for a FROM (or `COPY --from=IMAGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// How the builder names it again (e.g. `stacks/bookworm:latest`, `apps/base@sha256:…`;
    /// empty for `scratch`).
    pub reference: String,
    /// What identifies its content (a manifest digest): the start of the cache key chain.
    pub digest: String,
    pub config: ImageConfig,
}

/// Looks up the images a Dockerfile names (stacks, paas's registry, other registries):
/// I/O lives with the caller.
pub trait Bases {
    /// `image` is the expanded FROM word (not a stage name). An error says where it looked.
    fn resolve(&self, image: &str) -> Result<BaseImage, String>;
}

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageBase {
    Image(Box<BaseImage>),
    /// An earlier stage (its index in [`Plan::stages`]).
    Stage(usize),
}

/// Where COPY reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    /// The build context (the pushed source minus `.dockerignore`).
    Context,
    Stage(usize),
    Image(Box<BaseImage>),
}

/// What a step does to the filesystem (config-only steps do nothing to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Changes only the image config.
    Config,
    /// Makes the working directory (WORKDIR) when missing.
    Workdir(String),
    Run {
        argv: Vec<String>,
        /// The config's Env plus the ARGs in effect (ENV wins).
        env: Vec<String>,
        user: String,
        workdir: String,
    },
    Copy {
        from: CopyFrom,
        /// Expanded, relative to the context root or the stage's `/` (globs allowed).
        sources: Vec<String>,
        /// Absolute; a directory when it ends in `/` or there are several sources.
        dest: String,
        chown: Option<String>,
        chmod: Option<u32>,
        /// ADD: local tar archives are unpacked.
        unpack: bool,
    },
}

/// One instruction of a stage, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    /// As written (what `Step N/M : …` shows).
    pub text: String,
    pub action: Action,
    /// What the step's cache key is made of besides its parent and the files it reads:
    /// the instruction with its words expanded and, for RUN, the build args in effect.
    pub cache_input: String,
    /// The image config after this step.
    pub config: ImageConfig,
}

/// One stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: Option<String>,
    pub line: usize,
    pub from: StageBase,
    pub steps: Vec<Step>,
    /// The config the stage ends with.
    pub config: ImageConfig,
}

/// What to build: the stages the last one needs, in order (the last is the image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub stages: Vec<Stage>,
    /// `(name, value)` of the build args the Dockerfile declared and the caller gave.
    pub used_args: Vec<(String, String)>,
}

impl Plan {
    /// Steps of the needed stages, counted as Docker counts them (each FROM is a step).
    pub fn step_count(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len() + 1).sum()
    }
}

fn perr(line: usize, why: impl Into<String>) -> PlanError {
    PlanError {
        line,
        why: why.into(),
    }
}

const PREDEFINED: [(&str, &str); 6] = [
    ("TARGETPLATFORM", "linux/amd64"),
    ("TARGETOS", "linux"),
    ("TARGETARCH", "amd64"),
    ("BUILDPLATFORM", "linux/amd64"),
    ("BUILDOS", "linux"),
    ("BUILDARCH", "amd64"),
];

/// Names of config vars whose values are never printed (as build args).
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
        "DATABASE_URL",
        "_URL",
        "DSN",
        "CERT",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A build arg as the push shows it: `NAME=value`, or `NAME=(hidden)` for a secret-looking
/// name.
pub fn shown_arg(name: &str, value: &str) -> String {
    if looks_secret(name) {
        format!("{name}=(hidden)")
    } else {
        format!("{name}={value}")
    }
}

/// Plans the build of `file` with the build args `args` (e.g. the app's config vars).
pub fn plan(
    file: &Dockerfile,
    args: &BTreeMap<String, String>,
    bases: &dyn Bases,
) -> Result<Plan, PlanError> {
    let esc = file.escape;
    // Split into the global ARGs and the stages.
    let mut global: BTreeMap<String, String> = PREDEFINED
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut used = BTreeMap::new();
    let mut raw_stages: Vec<(&Located, Vec<&Located>)> = Vec::new();
    for l in &file.instructions {
        match (&l.instruction, raw_stages.last_mut()) {
            (Instruction::From { .. }, _) => raw_stages.push((l, Vec::new())),
            (Instruction::Arg(list), None) => {
                for (k, default) in list {
                    let value = match (args.get(k), default) {
                        (Some(v), _) => {
                            used.insert(k.clone(), v.clone());
                            Some(v.clone())
                        }
                        (None, Some(d)) => {
                            let g = &global;
                            Some(
                                words::expand(d, esc, &|n| g.get(n).map(String::as_str))
                                    .map_err(|e| perr(l.line, e.to_string()))?,
                            )
                        }
                        (None, None) => None,
                    };
                    global.insert(k.clone(), value.unwrap_or_default());
                }
            }
            (_, Some(stage)) => stage.1.push(l),
            (_, None) => unreachable!("parse() checks that FROM or ARG comes first"),
        }
    }
    // Stage names → indexes, and which stages the last one needs.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut froms = Vec::new();
    for (i, (from, _)) in raw_stages.iter().enumerate() {
        let Instruction::From { image, stage } = &from.instruction else {
            unreachable!()
        };
        let g = &global;
        let image = words::expand(image, esc, &|n| g.get(n).map(String::as_str))
            .map_err(|e| perr(from.line, e.to_string()))?;
        if image.is_empty() {
            return Err(perr(
                from.line,
                "FROM names no image (an ARG it uses is empty?)",
            ));
        }
        froms.push(image);
        if let Some(name) = stage {
            if names.insert(name.clone(), i).is_some() {
                return Err(perr(from.line, format!("two stages are named `{name}`")));
            }
        }
    }
    let stage_ref = |word: &str, before: usize| -> Option<usize> {
        let lower = word.to_ascii_lowercase();
        match names.get(&lower) {
            Some(&i) if i < before => Some(i),
            _ => match word.parse::<usize>() {
                Ok(i) if i < before => Some(i),
                _ => None,
            },
        }
    };
    // Plan every stage (cheap), then keep those the last needs.
    let mut planned: Vec<Stage> = Vec::new();
    for (i, (from, body)) in raw_stages.iter().enumerate() {
        let Instruction::From { stage: name, .. } = &from.instruction else {
            unreachable!()
        };
        let (start, config) = match stage_ref(&froms[i], i) {
            Some(s) => (StageBase::Stage(s), planned[s].config.clone()),
            None => {
                let base = bases
                    .resolve(&froms[i])
                    .map_err(|why| perr(from.line, why))?;
                let config = base.config.clone();
                (StageBase::Image(Box::new(base)), config)
            }
        };
        let mut st = StageState {
            esc,
            config,
            shell: vec!["/bin/sh".into(), "-c".into()],
            args: BTreeMap::new(),
            cmd_set: false,
            global: &global,
            given: args,
            used: &mut used,
        };
        let mut steps = Vec::new();
        for l in body {
            let action = st
                .step(l, &|w| stage_ref(w, i), bases)
                .map_err(|why| perr(l.line, why))?;
            let cache_input = cache_input(&l.text, &action, &st);
            steps.push(Step {
                line: l.line,
                text: l.text.clone(),
                action,
                cache_input,
                config: st.config.clone(),
            });
        }
        let config = st.config.clone();
        planned.push(Stage {
            name: name.clone(),
            line: from.line,
            from: start,
            steps,
            config,
        });
    }
    // Keep what the last stage needs, renumbering references.
    let last = planned.len() - 1;
    let mut needed = vec![false; planned.len()];
    needed[last] = true;
    for i in (0..=last).rev() {
        if !needed[i] {
            continue;
        }
        if let StageBase::Stage(s) = planned[i].from {
            needed[s] = true;
        }
        for step in &planned[i].steps {
            if let Action::Copy {
                from: CopyFrom::Stage(s),
                ..
            } = step.action
            {
                needed[s] = true;
            }
        }
    }
    let mut index = vec![usize::MAX; planned.len()];
    let mut stages = Vec::new();
    for (i, mut stage) in planned.into_iter().enumerate() {
        if !needed[i] {
            continue;
        }
        index[i] = stages.len();
        if let StageBase::Stage(s) = &mut stage.from {
            *s = index[*s];
        }
        for step in &mut stage.steps {
            if let Action::Copy {
                from: CopyFrom::Stage(s),
                ..
            } = &mut step.action
            {
                *s = index[*s];
            }
        }
        stages.push(stage);
    }
    Ok(Plan {
        stages,
        used_args: used.into_iter().collect(),
    })
}

/// The state of a stage while its instructions are read.
struct StageState<'a> {
    esc: char,
    config: ImageConfig,
    shell: Vec<String>,
    /// ARGs declared in this stage (name → value).
    args: BTreeMap<String, String>,
    cmd_set: bool,
    global: &'a BTreeMap<String, String>,
    given: &'a BTreeMap<String, String>,
    used: &'a mut BTreeMap<String, String>,
}

impl StageState<'_> {
    /// A variable as the stage's words see it: ENV first, then the stage's ARGs.
    fn var(&self, name: &str) -> Option<&str> {
        self.config
            .env_value(name)
            .or_else(|| self.args.get(name).map(String::as_str))
    }

    fn expand(&self, word: &str) -> Result<String, String> {
        words::expand(word, self.esc, &|n| self.var(n)).map_err(|e| e.to_string())
    }

    fn argv(&self, c: &Command) -> Vec<String> {
        match c {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = self.shell.clone();
                v.push(s.clone());
                v
            }
        }
    }

    fn absolute(&self, path: &str) -> String {
        let joined = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{}", self.config.working_dir.trim_end_matches('/'), path)
        };
        let cleaned = crate::ignore::clean(&joined);
        let dir = path.ends_with('/') || path.ends_with("/.") || path == ".";
        format!(
            "/{cleaned}{}",
            if dir && !cleaned.is_empty() { "/" } else { "" }
        )
    }

    fn step(
        &mut self,
        l: &Located,
        stage_ref: &dyn Fn(&str) -> Option<usize>,
        bases: &dyn Bases,
    ) -> Result<Action, String> {
        Ok(match &l.instruction {
            Instruction::From { .. } => unreachable!("stages are split at FROM"),
            Instruction::Run(c) => {
                let mut env = self.config.env.clone();
                for (k, v) in &self.args {
                    if self.config.env_value(k).is_none() {
                        env.push(format!("{k}={v}"));
                    }
                }
                Action::Run {
                    argv: self.argv(c),
                    env,
                    user: self.config.user.clone(),
                    workdir: self.config.working_dir.clone(),
                }
            }
            Instruction::Cmd(c) => {
                self.config.cmd = Some(self.argv(c));
                self.cmd_set = true;
                Action::Config
            }
            Instruction::Entrypoint(c) => {
                let argv = self.argv(c);
                self.config.entrypoint = if argv.is_empty() { None } else { Some(argv) };
                if !self.cmd_set {
                    self.config.cmd = None;
                }
                Action::Config
            }
            Instruction::Shell(v) => {
                self.shell = v.clone();
                Action::Config
            }
            Instruction::Env(pairs) => {
                for (k, v) in pairs {
                    let k = self.expand(k)?;
                    let v = self.expand(v)?;
                    self.config.set_env(&k, &v);
                }
                Action::Config
            }
            Instruction::Label(pairs) => {
                for (k, v) in pairs {
                    let k = self.expand(k)?;
                    let v = self.expand(v)?;
                    self.config.labels.insert(k, v);
                }
                Action::Config
            }
            Instruction::Maintainer(v) => {
                self.config.labels.insert("maintainer".into(), v.clone());
                Action::Config
            }
            Instruction::Arg(list) => {
                for (k, default) in list {
                    let value = match (self.given.get(k), default) {
                        (Some(v), _) => {
                            self.used.insert(k.clone(), v.clone());
                            v.clone()
                        }
                        (None, Some(d)) => self.expand(d)?,
                        (None, None) => self.global.get(k).cloned().unwrap_or_default(),
                    };
                    self.args.insert(k.clone(), value);
                }
                Action::Config
            }
            Instruction::Workdir(w) => {
                let w = self.expand(w)?;
                let abs = self.absolute(&w);
                let abs = if abs.len() > 1 {
                    abs.trim_end_matches('/').to_string()
                } else {
                    abs
                };
                self.config.working_dir = abs.clone();
                Action::Workdir(abs)
            }
            Instruction::User(u) => {
                self.config.user = self.expand(u)?;
                Action::Config
            }
            Instruction::StopSignal(s) => {
                let s = self.expand(s)?;
                if !valid_signal(&s) {
                    return Err(format!(
                        "STOPSIGNAL {s}: not a signal (write SIGTERM, SIGINT, SIGQUIT … or a number)"
                    ));
                }
                self.config.stop_signal = Some(s);
                Action::Config
            }
            Instruction::Expose(ports) => {
                for p in ports {
                    let p = self.expand(p)?;
                    for one in expose_ports(&p)? {
                        if !self.config.exposed_ports.contains(&one) {
                            self.config.exposed_ports.push(one);
                        }
                    }
                }
                Action::Config
            }
            Instruction::Volume(paths) => {
                for p in paths {
                    let p = self.expand(p)?;
                    if !self.config.volumes.contains(&p) {
                        self.config.volumes.push(p);
                    }
                }
                Action::Config
            }
            Instruction::Healthcheck(h) => {
                self.config.healthcheck = Some(health(h.as_ref()));
                Action::Config
            }
            Instruction::Copy(spec) => self.copy(spec, false, stage_ref, bases)?,
            Instruction::Add(spec) => self.copy(spec, true, stage_ref, bases)?,
        })
    }

    fn copy(
        &mut self,
        spec: &CopySpec,
        add: bool,
        stage_ref: &dyn Fn(&str) -> Option<usize>,
        bases: &dyn Bases,
    ) -> Result<Action, String> {
        let from = match &spec.from {
            None => CopyFrom::Context,
            Some(f) => {
                let f = self.expand(f)?;
                match stage_ref(&f) {
                    Some(s) => CopyFrom::Stage(s),
                    None => CopyFrom::Image(Box::new(bases.resolve(&f).map_err(|why| {
                        format!("COPY --from={f}: no earlier stage has that name, and {why}")
                    })?)),
                }
            }
        };
        let mut sources = Vec::new();
        for s in &spec.sources {
            let s = self.expand(s)?;
            if add && (s.contains("://") || s.starts_with("git@")) {
                return Err(format!(
                    "ADD {s}: paas's builder does not download URLs (the build would change \
                     with the remote file and its cache could not tell); download it in a RUN \
                     step (curl or wget) or commit the file"
                ));
            }
            sources.push(s);
        }
        let dest_word = self.expand(&spec.dest)?;
        let mut dest = self.absolute(&dest_word);
        if (sources.len() > 1 || sources.iter().any(|s| crate::ignore::is_glob(s)))
            && !dest.ends_with('/')
            && !dest_word.ends_with('/')
        {
            if sources.len() > 1 {
                return Err(format!(
                    "{}: with several sources the destination must be a directory ending in `/` ({dest_word}/)",
                    if add { "ADD" } else { "COPY" }
                ));
            }
            dest.push('/');
        }
        let chown = match &spec.chown {
            Some(c) => Some(self.expand(c)?),
            None => None,
        };
        let chmod = match &spec.chmod {
            Some(c) => Some(
                u32::from_str_radix(c, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("--chmod={c}: not an octal mode like 755"))?,
            ),
            None => None,
        };
        Ok(Action::Copy {
            from,
            sources,
            dest,
            chown,
            chmod,
            unpack: add,
        })
    }
}

fn health(h: Option<&HealthSpec>) -> Health {
    match h {
        None => Health {
            test: vec!["NONE".into()],
            ..Health::default()
        },
        Some(h) => Health {
            test: match &h.command {
                Command::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            },
            interval_secs: h.interval,
            timeout_secs: h.timeout,
            start_period_secs: h.start_period,
            retries: h.retries,
        },
    }
}

fn valid_signal(s: &str) -> bool {
    if s.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n)) {
        return true;
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ]
    .contains(&name)
        || name.starts_with("RTMIN")
        || name.starts_with("RTMAX")
}

/// `80`, `80/tcp`, `53/udp`, `8000-8002` → `["80/tcp"]`, … (a range at most 1000 ports).
fn expose_ports(p: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("EXPOSE {p}: the protocol must be tcp, udp or sctp"));
    }
    let bad = || format!("EXPOSE {p}: not a port (1-65535) or a range like 8000-8010");
    let num = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(bad);
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if hi < lo || hi - lo >= 1000 {
        return Err(bad());
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

/// The words of a step that decide its result, besides its parent and the files it reads.
fn cache_input(text: &str, action: &Action, st: &StageState<'_>) -> String {
    match action {
        Action::Run {
            argv,
            env,
            user,
            workdir,
        } => serde_json::json!({"run": argv, "env": env, "user": user, "workdir": workdir})
            .to_string(),
        Action::Copy {
            from,
            sources,
            dest,
            chown,
            chmod,
            unpack,
        } => {
            let from = match from {
                CopyFrom::Context => "context".to_string(),
                CopyFrom::Stage(s) => format!("stage {s}"),
                CopyFrom::Image(b) => format!("image {}", b.digest),
            };
            serde_json::json!({"copy": sources, "from": from, "dest": dest, "chown": chown,
                "chmod": chmod, "add": unpack, "user": st.config.user})
            .to_string()
        }
        Action::Workdir(dir) => format!("workdir {dir}"),
        Action::Config => text.to_string(),
    }
}

/// The cache key of a step: sha256 of its parent's key, its cache input and the hashes of
/// the files it read (`(path, sha256)` in a fixed order), as hex.
pub fn cache_key(parent: &str, input: &str, files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    h.update([0]);
    h.update(input.as_bytes());
    h.update([0]);
    for (path, hash) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(hash.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
