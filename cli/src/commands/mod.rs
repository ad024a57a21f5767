//! The command line: global options, one subcommand per topic (Heroku-style names such as
//! `apps:create`), and the errors every command can end with.

use std::path::Path;

use clap::{Args, Parser, Subcommand};

use crate::client::{Client, ClientError};
use crate::config::{self, ConfigError, Settings};
use crate::git_remote::{self, GitRemoteError};

mod access;
mod apps;
mod buildpacks;
mod builds;
mod certs;
mod config_vars;
mod cron;
mod deploy;
mod domains;
mod exec;
mod git_credential;
mod git_open;
mod login;
mod logs;
mod nodes;
mod ps;
mod ps_run;
mod releases;
mod restart;

/// paas: deploy apps with `git push` and manage them from here.
#[derive(Debug, Parser)]
#[command(name = "paas", version, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
struct Global {
    /// Controller URL [default: the config file's, else http://127.0.0.1:8080]
    #[arg(long, env = "PAAS_URL", global = true, value_name = "URL")]
    url: Option<String>,
    /// API token [default: the config file's]
    #[arg(
        long,
        env = "PAAS_TOKEN",
        global = true,
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    json: bool,
    /// Only change config or formation if it still has this ETag (412 otherwise)
    #[arg(long, global = true, value_name = "ETAG")]
    if_match: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List apps
    Apps,
    /// Create an app
    #[command(name = "apps:create")]
    AppsCreate {
        /// 2 to 30 lowercase letters, digits and dashes, starting with a letter, ending with a letter or digit
        name: String,
    },
    /// Show one app
    #[command(name = "apps:info")]
    AppsInfo(AppArg),
    /// Destroy an app: its releases, config, jobs and repository
    #[command(name = "apps:destroy")]
    AppsDestroy {
        /// The app
        #[arg(short, long, value_name = "APP")]
        app: Option<String>,
        /// The app's name again, to confirm
        #[arg(long, value_name = "APP")]
        confirm: Option<String>,
        /// The app (instead of -a)
        #[arg(value_name = "APP", conflicts_with = "app")]
        name: Option<String>,
    },
    /// List an app's releases, newest first
    Releases(AppArg),
    /// List the cron entries of the app's app.json with their next run (UTC)
    Cron(AppArg),
    /// Check a controller URL and token (or log in with --user), and save them
    Login {
        /// Log in as this user (the password is read from stdin with --password-stdin)
        #[arg(long, value_name = "NAME", requires = "password_stdin")]
        user: Option<String>,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show an app's config vars
    Config(AppArg),
    /// Print one config var's value
    #[command(name = "config:get")]
    ConfigGet {
        #[command(flatten)]
        app: AppArg,
        /// The key, such as DATABASE_URL
        key: String,
    },
    /// Set config vars (KEY=value …) and release the app with them
    #[command(name = "config:set")]
    ConfigSet {
        #[command(flatten)]
        app: AppArg,
        /// KEY=value pairs
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Unset config vars and release the app without them
    #[command(name = "config:unset")]
    ConfigUnset {
        #[command(flatten)]
        app: AppArg,
        /// Keys to remove
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// Show one release [default: the current one]
    #[command(name = "releases:info")]
    ReleasesInfo {
        #[command(flatten)]
        app: AppArg,
        /// v3 or 3
        version: Option<String>,
    },
    /// Add (or update) this folder's `paas` git remote for the app
    #[command(name = "git:remote")]
    GitRemote {
        /// The app
        #[arg(short, long, value_name = "APP", required = true)]
        app: String,
    },
    /// Clone an app's repository into DIR (default: the app's name), with its `paas`
    /// remote set, like `heroku git:clone` (admins and the app's collaborators)
    #[command(name = "git:clone")]
    GitClone {
        /// The app
        #[arg(short, long, value_name = "APP", required = true)]
        app: String,
        /// The folder to clone into [default: the app's name]
        dir: Option<String>,
    },
    /// Open the app's URL in a browser (prints it without one)
    Open(AppArg),
    /// Show the app's process types, their quantities and the running jobs
    Ps(AppArg),
    /// Set how many processes of each type run: web=2 worker=1
    #[command(name = "ps:scale")]
    PsScale {
        #[command(flatten)]
        app: AppArg,
        #[arg(required = true, value_name = "TYPE=N")]
        pairs: Vec<String>,
    },
    /// Set the memory size of process types: web=512M
    #[command(name = "ps:resize")]
    PsResize {
        #[command(flatten)]
        app: AppArg,
        /// TYPE=SIZE pairs (sizes: basic, standard-1x, standard-2x, performance, or 768M),
        /// or process types with --memory
        #[arg(required = true, value_name = "TYPE=SIZE")]
        pairs: Vec<String>,
        /// A memory size for every TYPE given: 768M, 1.5G
        #[arg(long, value_name = "SIZE")]
        memory: Option<String>,
    },
    /// Roll back to a release [default: the one before the current]
    Rollback {
        #[command(flatten)]
        app: AppArg,
        /// v3 or 3
        version: Option<String>,
    },
    /// Show an app's logs (build, processes); -t follows them live
    Logs {
        #[command(flatten)]
        app: AppArg,
        /// Keep following new lines
        #[arg(short, long)]
        tail: bool,
        /// Only this process type (web), dyno (web.1) or `router` (access lines)
        #[arg(short, long, visible_alias = "dyno", value_name = "TYPE")]
        ps: Option<String>,
        /// How many recent lines to show first (at most 10000)
        #[arg(short = 'n', long, default_value_t = 100)]
        num: usize,
    },
    /// List an app's custom domains
    Domains(AppArg),
    /// Add a custom domain to an app (unique across apps)
    #[command(name = "domains:add")]
    DomainsAdd {
        #[command(flatten)]
        app: AppArg,
        /// A host name such as www.example.com
        hostname: String,
    },
    /// Remove a custom domain from an app
    #[command(name = "domains:remove")]
    DomainsRemove {
        #[command(flatten)]
        app: AppArg,
        hostname: String,
    },
    /// List an app's TLS certificates
    Certs(AppArg),
    /// Add a TLS certificate (PEM chain and key files) for a host name of the app
    #[command(name = "certs:add")]
    CertsAdd {
        #[command(flatten)]
        app: AppArg,
        /// The certificate chain, PEM (leaf first)
        cert: std::path::PathBuf,
        /// Its private key, PEM
        key: std::path::PathBuf,
    },
    /// Redirect the app's plain HTTP requests to HTTPS (on) or stop (off)
    #[command(name = "certs:redirect")]
    CertsRedirect {
        #[command(flatten)]
        app: AppArg,
        /// on or off
        state: String,
    },
    /// Automatic certificates (ACME HTTP-01) for the app's custom domains: on or off
    #[command(name = "certs:auto")]
    CertsAuto {
        #[command(flatten)]
        app: AppArg,
        /// on or off (leave out to show the state)
        state: Option<String>,
    },
    /// Remove a TLS certificate (by the id `paas certs` shows)
    #[command(name = "certs:remove")]
    CertsRemove {
        #[command(flatten)]
        app: AppArg,
        id: String,
    },
    /// List the node agents with their state, memory and jobs
    Nodes,
    /// Drain a node: its jobs move to other nodes and it gets no new ones
    #[command(name = "nodes:drain")]
    NodesDrain {
        /// The node's name (see `paas nodes`)
        name: String,
    },
    /// Let a drained node take jobs again
    #[command(name = "nodes:undrain")]
    NodesUndrain {
        /// The node's name (see `paas nodes`)
        name: String,
    },
    /// Forget a node and its agent credential, so a rebuilt machine can join under its name
    /// (drain it first if it still has jobs)
    #[command(name = "nodes:remove")]
    NodesRemove {
        /// The node's name (see `paas nodes`)
        name: String,
    },
    /// Deploy an image already in the controller's registry (no build)
    Deploy {
        #[command(flatten)]
        app: AppArg,
        /// NAME:TAG or NAME@sha256:… in the controller's registry (push it with skopeo)
        #[arg(long, value_name = "REF")]
        image: String,
    },
    /// List the buildpacks an app builds with, in order (none: detected at each push)
    Buildpacks(AppArg),
    /// Add a buildpack to the app's list (at the end, or at -i N), like `heroku
    /// buildpacks:add`: a built-in name (python, nodejs, go, static, procfile, or
    /// heroku/NAME), a classic buildpack's git URL (`#REF` pins a branch, tag or commit), or
    /// a path or file:// URL on the controller (admins)
    #[command(name = "buildpacks:add")]
    BuildpacksAdd {
        #[command(flatten)]
        app: AppArg,
        /// The 1-based position to insert at [default: last]
        #[arg(short, long, value_name = "N")]
        index: Option<usize>,
        /// NAME, https://…/buildpack.git[#REF], or /path
        buildpack: String,
    },
    /// Set the buildpack at -i N (default 1) of the app's list, like `heroku buildpacks:set`
    #[command(name = "buildpacks:set")]
    BuildpacksSet {
        #[command(flatten)]
        app: AppArg,
        /// The 1-based position to replace [default: 1]
        #[arg(short, long, value_name = "N")]
        index: Option<usize>,
        /// NAME, https://…/buildpack.git[#REF], or /path
        buildpack: String,
    },
    /// Remove a buildpack from the app's list, by URL or with -i N
    #[command(name = "buildpacks:remove")]
    BuildpacksRemove {
        #[command(flatten)]
        app: AppArg,
        /// The 1-based position to remove
        #[arg(short, long, value_name = "N")]
        index: Option<usize>,
        /// The buildpack to remove, as listed by `paas buildpacks`
        buildpack: Option<String>,
    },
    /// Clear the app's buildpacks: detect one again at each push
    #[command(name = "buildpacks:clear")]
    BuildpacksClear(AppArg),
    /// Run a command in a one-off job of the app's current release (exits with its code)
    Run {
        #[command(flatten)]
        app: AppArg,
        /// The command and its arguments (after --)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// List users (admins)
    Users,
    /// Add a user (admins)
    #[command(name = "users:add")]
    UsersAdd {
        /// 1-40 of a-z 0-9 - _ .
        name: String,
        /// member (sees only the apps they collaborate on) or admin
        #[arg(long, default_value = "member", value_parser = ["member", "admin"])]
        role: String,
        /// Read a password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a user with their tokens and app access (admins)
    #[command(name = "users:remove")]
    UsersRemove { name: String },
    /// List your API tokens (--all: everyone's, admins)
    Tokens {
        #[arg(long)]
        all: bool,
    },
    /// Create an API token and print it (shown only once)
    #[command(name = "tokens:create")]
    TokensCreate {
        /// What the token is for, such as ci
        #[arg(long)]
        name: Option<String>,
        /// Lifetime such as 30d, 12h [default: until revoked]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Make it for this user instead (admins)
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// Revoke an API token
    #[command(name = "tokens:revoke")]
    TokensRevoke { id: String },
    /// List the collaborators of an app
    Access(AppArg),
    /// Give a user access to an app
    #[command(name = "access:add")]
    AccessAdd {
        #[command(flatten)]
        app: AppArg,
        user: String,
    },
    /// Take a user's access to an app away
    #[command(name = "access:remove")]
    AccessRemove {
        #[command(flatten)]
        app: AppArg,
        user: String,
    },
    /// Show or set whether the app's containers may reach the controller's and the agents'
    /// API ports (off by default; `on` and `off` need an admin; new jobs get it)
    #[command(name = "apps:access-api")]
    AppsAccessApi {
        #[command(flatten)]
        app: AppArg,
        /// on or off; without it, show the setting
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
    },
    /// Show who the current token belongs to
    Whoami,
    /// Run a command inside a running job of the app (its first web job by default)
    #[command(name = "ps:exec")]
    PsExec {
        #[command(flatten)]
        app: AppArg,
        /// The job's id (see `paas ps -a APP`) [default: the app's first web job]
        #[arg(value_name = "JOB")]
        job: Option<String>,
        /// The job's id, as an option (same as JOB)
        #[arg(long = "job", value_name = "ID", conflicts_with = "job")]
        job_flag: Option<String>,
        /// The command and its arguments, after --
        #[arg(last = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Rename an app (its git remote here is updated too when it points at the app)
    #[command(name = "apps:rename")]
    AppsRename {
        #[command(flatten)]
        app: AppArg,
        /// The new name
        new_name: String,
    },
    /// Restart jobs with zero downtime: all, one process type, or one job
    #[command(name = "ps:restart")]
    PsRestart {
        #[command(flatten)]
        app: AppArg,
        /// A process type (web) or a job id; all jobs when omitted
        #[arg(value_name = "TYPE|JOB")]
        target: Option<String>,
    },
    /// Stop one job now (its formation starts a replacement)
    #[command(name = "ps:stop")]
    PsStop {
        #[command(flatten)]
        app: AppArg,
        /// The job id (see `paas ps`)
        job: String,
    },
    /// List an app's builds, newest first
    Builds {
        #[command(flatten)]
        app: AppArg,
        /// At most this many
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Show one build
    #[command(name = "builds:info")]
    BuildsInfo {
        #[command(flatten)]
        app: AppArg,
        /// The build id (see `paas builds`)
        id: String,
    },
    /// Print a build's output (follows it while it runs)
    #[command(name = "builds:output")]
    BuildsOutput {
        #[command(flatten)]
        app: AppArg,
        /// The build id (see `paas builds`)
        id: String,
    },
    /// git credential helper (set up by `paas login`)
    #[command(name = "git-credential", hide = true)]
    GitCredential {
        /// get, store or erase
        operation: String,
    },
}

/// `-a APP`, defaulting to the app of the `paas` git remote of the current folder.
#[derive(Debug, Args)]
struct AppArg {
    /// The app [default: the app of the current folder's `paas` git remote]
    #[arg(short, long, value_name = "APP")]
    app: Option<String>,
}

/// Why a command failed; [`CommandError::exit_code`] maps it to the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad input caught before calling the controller.
    #[error("{0}")]
    Usage(String),
    #[error(
        "no app given: use -a APP or run inside a folder whose `paas` git remote points at \
         the app"
    )]
    NoApp,
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    GitRemote(#[from] GitRemoteError),
}

impl CommandError {
    /// 0 ok, 1 usage or API error, 2 controller unreachable, 3 not logged in, 4 not found.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Client(err) => err.exit_code(),
            CommandError::Usage(_)
            | CommandError::NoApp
            | CommandError::Config(_)
            | CommandError::GitRemote(_) => 1,
        }
    }
}

/// What a command runs with: the resolved settings and the output mode.
struct Context {
    settings: Settings,
    json: bool,
    /// `--if-match ETAG` for config and formation changes.
    if_match: Option<String>,
}

impl Context {
    fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.settings.url, self.settings.token.clone())
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CommandError> {
    let file = config::load()?;
    let ctx = Context {
        settings: Settings::resolve(
            cli.global.url.as_deref(),
            cli.global.token.as_deref(),
            &file,
        ),
        json: cli.global.json,
        if_match: cli.global.if_match,
    };
    match cli.command {
        Command::Apps => apps::list(&ctx),
        Command::AppsCreate { name } => apps::create(&ctx, &name),
        Command::AppsInfo(arg) => apps::info(&ctx, &resolve_app(arg)?),
        Command::AppsDestroy { app, confirm, name } => {
            let app = app.or(name).ok_or_else(|| {
                CommandError::Usage("which app? paas apps:destroy APP --confirm APP".into())
            })?;
            validate_app_name(&app)?;
            apps::destroy(&ctx, &app, confirm.as_deref())
        }
        Command::Releases(arg) => releases::list(&ctx, &resolve_app(arg)?),
        Command::Cron(arg) => cron::list(&ctx, &resolve_app(arg)?),
        Command::Login { user: None, .. } => login::login(&ctx, file),
        Command::Login { user: Some(u), .. } => access::login_password(&ctx, file, &u),
        Command::Domains(arg) => domains::list(&ctx, &resolve_app(arg)?),
        Command::DomainsAdd { app, hostname } => domains::add(&ctx, &resolve_app(app)?, &hostname),
        Command::DomainsRemove { app, hostname } => {
            domains::remove(&ctx, &resolve_app(app)?, &hostname)
        }
        Command::Certs(arg) => certs::list(&ctx, &resolve_app(arg)?),
        Command::CertsAdd { app, cert, key } => certs::add(&ctx, &resolve_app(app)?, &cert, &key),
        Command::CertsRemove { app, id } => certs::remove(&ctx, &resolve_app(app)?, &id),
        Command::CertsRedirect { app, state } => certs::redirect(&ctx, &resolve_app(app)?, &state),
        Command::CertsAuto { app, state } => {
            certs::auto(&ctx, &resolve_app(app)?, state.as_deref())
        }
        Command::Config(arg) => config_vars::show(&ctx, &resolve_app(arg)?),
        Command::ConfigGet { app, key } => config_vars::get(&ctx, &resolve_app(app)?, &key),
        Command::ConfigSet { app, pairs } => config_vars::set(&ctx, &resolve_app(app)?, &pairs),
        Command::ConfigUnset { app, keys } => config_vars::unset(&ctx, &resolve_app(app)?, &keys),
        Command::ReleasesInfo { app, version } => {
            releases::info(&ctx, &resolve_app(app)?, version.as_deref())
        }
        Command::GitRemote { app } => {
            validate_app_name(&app)?;
            git_open::git_remote(&ctx, &app)
        }
        Command::GitClone { app, dir } => {
            validate_app_name(&app)?;
            git_open::git_clone(&ctx, &app, dir.as_deref())
        }
        Command::Open(arg) => git_open::open(&ctx, &resolve_app(arg)?),
        Command::Deploy { app, image } => deploy::deploy_image(&ctx, &resolve_app(app)?, &image),
        Command::Buildpacks(arg) => buildpacks::show(&ctx, &resolve_app(arg)?),
        Command::BuildpacksAdd {
            app,
            index,
            buildpack,
        } => buildpacks::add(&ctx, &resolve_app(app)?, &buildpack, index),
        Command::BuildpacksSet {
            app,
            index,
            buildpack,
        } => buildpacks::set(&ctx, &resolve_app(app)?, &buildpack, index),
        Command::BuildpacksRemove {
            app,
            index,
            buildpack,
        } => buildpacks::remove(&ctx, &resolve_app(app)?, buildpack.as_deref(), index),
        Command::BuildpacksClear(arg) => buildpacks::clear(&ctx, &resolve_app(arg)?),
        Command::Ps(arg) => ps::ps(&ctx, &resolve_app(arg)?),
        Command::PsScale { app, pairs } => ps::scale(&ctx, &resolve_app(app)?, &pairs),
        Command::PsResize { app, pairs, memory } => {
            ps::resize(&ctx, &resolve_app(app)?, &pairs, memory.as_deref())
        }
        Command::Rollback { app, version } => {
            releases::rollback(&ctx, &resolve_app(app)?, version.as_deref())
        }
        Command::Nodes => nodes::list(&ctx),
        Command::NodesDrain { name } => nodes::drain(&ctx, &name, false),
        Command::NodesUndrain { name } => nodes::drain(&ctx, &name, true),
        Command::NodesRemove { name } => nodes::remove(&ctx, &name),
        Command::Run { app, command } => {
            let code = ps_run::run(&ctx, &resolve_app(app)?, &command)?;
            if code != 0 {
                std::process::exit(i32::from(code));
            }
            Ok(())
        }
        Command::PsExec {
            app,
            job,
            job_flag,
            command,
        } => {
            let job = job.or(job_flag);
            let code = exec::ps_exec(&ctx, &resolve_app(app)?, job.as_deref(), &command)?;
            if code != 0 {
                std::process::exit(code.clamp(0, 255));
            }
            Ok(())
        }
        Command::Logs { app, tail, ps, num } => {
            logs::logs(&ctx, &resolve_app(app)?, tail, ps.as_deref(), num)
        }
        Command::Users => access::users(&ctx),
        Command::UsersAdd {
            name,
            role,
            password_stdin,
        } => access::users_add(&ctx, &name, &role, password_stdin),
        Command::UsersRemove { name } => access::users_remove(&ctx, &name),
        Command::Tokens { all } => access::tokens(&ctx, all),
        Command::TokensCreate {
            name,
            expires,
            user,
        } => access::tokens_create(&ctx, name.as_deref(), expires.as_deref(), user.as_deref()),
        Command::TokensRevoke { id } => access::tokens_revoke(&ctx, &id),
        Command::Access(arg) => access::access(&ctx, &resolve_app(arg)?),
        Command::AccessAdd { app, user } => access::access_add(&ctx, &resolve_app(app)?, &user),
        Command::AppsAccessApi { app, state } => {
            access::access_api(&ctx, &resolve_app(app)?, state.as_deref())
        }
        Command::AccessRemove { app, user } => {
            access::access_remove(&ctx, &resolve_app(app)?, &user)
        }
        Command::Whoami => access::whoami(&ctx),
        Command::AppsRename { app, new_name } => {
            validate_app_name(&new_name)?;
            apps::rename(&ctx, &resolve_app(app)?, &new_name)
        }
        Command::PsRestart { app, target } => {
            restart::restart(&ctx, &resolve_app(app)?, target.as_deref())
        }
        Command::PsStop { app, job } => restart::stop(&ctx, &resolve_app(app)?, &job),
        Command::Builds { app, limit } => builds::list(&ctx, &resolve_app(app)?, limit),
        Command::BuildsInfo { app, id } => builds::info(&ctx, &resolve_app(app)?, &id),
        Command::BuildsOutput { app, id } => builds::output(&ctx, &resolve_app(app)?, &id),
        Command::GitCredential { operation } => git_credential::credential(&ctx, &operation),
    }
}

/// The `-a` app, else the app of the `paas` git remote; validated either way.
fn resolve_app(arg: AppArg) -> Result<String, CommandError> {
    let app = match arg.app {
        Some(app) => app,
        None => git_remote::app_from_remote(Path::new("."))?.ok_or(CommandError::NoApp)?,
    };
    validate_app_name(&app)?;
    Ok(app)
}

fn validate_app_name(name: &str) -> Result<(), CommandError> {
    paas_api::names::validate_app_name(name).map_err(CommandError::Usage)
}
