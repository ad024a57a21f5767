//! The shape of the command line: global options and every subcommand with its arguments
//! (clap derives the parser and `--help` from these). What each one does is in
//! [`super::run`] and the topic modules.

use clap::{Args, Parser, Subcommand};

/// paas: deploy apps with `git push` and manage them from here.
#[derive(Debug, Parser)]
#[command(name = "paas", version, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub(super) global: Global,
    #[command(subcommand)]
    pub(super) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(super) struct Global {
    /// Controller URL [default: the config file's, else http://127.0.0.1:8080]
    #[arg(long, env = "PAAS_URL", global = true, value_name = "URL")]
    pub(super) url: Option<String>,
    /// API token [default: the config file's]
    #[arg(
        long,
        env = "PAAS_TOKEN",
        global = true,
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub(super) token: Option<String>,
    /// Print JSON for scripts instead of tables
    #[arg(long, global = true)]
    pub(super) json: bool,
    /// Only change config or formation if it still has this ETag (412 otherwise)
    #[arg(long, global = true, value_name = "ETAG")]
    pub(super) if_match: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
    /// List the add-ons attached to an app (name, service, plan, state, node, config var)
    Addons(AppArg),
    /// Create a PostgreSQL or Redis add-on; its URL is set on the app (DATABASE_URL, REDIS_URL)
    #[command(name = "addons:create")]
    AddonsCreate {
        #[command(flatten)]
        app: AppArg,
        /// postgresql or redis
        service: String,
        /// mini (default), basic or standard
        #[arg(long)]
        plan: Option<String>,
        /// Set the URL as NAME_URL instead of DATABASE_URL / REDIS_URL
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Wait until the add-on answers (at most 5 minutes)
        #[arg(long)]
        wait: bool,
    },
    /// Show one add-on: state, node, attachments
    #[command(name = "addons:info")]
    AddonsInfo {
        #[command(flatten)]
        app: AppArg,
        addon: String,
    },
    /// Attach an add-on of another app to this one, as NAME_URL
    #[command(name = "addons:attach")]
    AddonsAttach {
        #[command(flatten)]
        app: AppArg,
        addon: String,
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
    },
    /// Detach an add-on from an app that does not own it
    #[command(name = "addons:detach")]
    AddonsDetach {
        #[command(flatten)]
        app: AppArg,
        addon: String,
    },
    /// Destroy an add-on and its data (its URL is unset on every attached app)
    #[command(name = "addons:destroy")]
    AddonsDestroy {
        #[command(flatten)]
        app: AppArg,
        addon: String,
        /// The app's name again, to confirm
        #[arg(long, value_name = "APP")]
        confirm: Option<String>,
    },
    /// psql connected to the app's PostgreSQL add-on (interactive, or -c SQL)
    #[command(name = "pg:psql")]
    PgPsql {
        #[command(flatten)]
        app: AppArg,
        /// The add-on (default: the app's only postgresql add-on)
        addon: Option<String>,
        /// Run this SQL and exit
        #[arg(short = 'c', long = "command", value_name = "SQL")]
        command: Option<String>,
    },
    /// List the backups of the app's PostgreSQL add-ons
    #[command(name = "pg:backups")]
    PgBackups(AppArg),
    /// Capture a backup (pg_dump) of the app's PostgreSQL add-on
    #[command(name = "pg:backups:capture")]
    PgBackupsCapture {
        #[command(flatten)]
        app: AppArg,
        addon: Option<String>,
    },
    /// Restore a backup into the app's PostgreSQL add-on (replaces its data)
    #[command(name = "pg:backups:restore")]
    PgBackupsRestore {
        #[command(flatten)]
        app: AppArg,
        backup: String,
        /// The add-on to restore into (default: the app's only postgresql add-on)
        addon: Option<String>,
        /// The app's name again, to confirm
        #[arg(long, value_name = "APP")]
        confirm: Option<String>,
    },
    /// Download a backup's dump (pg_dump -Fc; for pg_restore)
    #[command(name = "pg:backups:download")]
    PgBackupsDownload {
        #[command(flatten)]
        app: AppArg,
        /// The backup (default: the newest completed one)
        backup: Option<String>,
        /// The file to write (default: latest.dump)
        #[arg(short, long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Delete a backup
    #[command(name = "pg:backups:delete")]
    PgBackupsDelete {
        #[command(flatten)]
        app: AppArg,
        backup: String,
    },
    /// Back the app's PostgreSQL add-on up every day, keeping the newest N
    #[command(name = "pg:backups:schedule")]
    PgBackupsSchedule {
        #[command(flatten)]
        app: AppArg,
        addon: Option<String>,
        /// The time of day, HH:MM in UTC
        #[arg(long, value_name = "HH:MM", default_value = "02:00")]
        at: String,
        /// How many scheduled backups to keep
        #[arg(long, value_name = "N", default_value_t = 7)]
        keep: u32,
    },
    /// List the daily backup schedules of the app's PostgreSQL add-ons
    #[command(name = "pg:backups:schedules")]
    PgBackupsSchedules(AppArg),
    /// Stop the daily backups of the app's PostgreSQL add-on
    #[command(name = "pg:backups:unschedule")]
    PgBackupsUnschedule {
        #[command(flatten)]
        app: AppArg,
        addon: Option<String>,
    },
    /// List the backups (RDB snapshots) of the app's Redis add-ons
    #[command(name = "redis:backups")]
    RedisBackups(AppArg),
    /// Capture an RDB snapshot of the app's Redis add-on
    #[command(name = "redis:backups:capture")]
    RedisBackupsCapture {
        #[command(flatten)]
        app: AppArg,
        addon: Option<String>,
    },
    /// Restore an RDB snapshot into the app's Redis add-on (replaces all its data)
    #[command(name = "redis:backups:restore")]
    RedisBackupsRestore {
        #[command(flatten)]
        app: AppArg,
        backup: String,
        /// The add-on to restore into (default: the app's only redis add-on)
        addon: Option<String>,
        /// The app's name again, to confirm
        #[arg(long, value_name = "APP")]
        confirm: Option<String>,
    },
    /// Download a Redis backup's RDB snapshot
    #[command(name = "redis:backups:download")]
    RedisBackupsDownload {
        #[command(flatten)]
        app: AppArg,
        /// The backup (default: the newest completed one)
        backup: Option<String>,
        /// The file to write (default: latest.rdb)
        #[arg(short, long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Delete a Redis backup
    #[command(name = "redis:backups:delete")]
    RedisBackupsDelete {
        #[command(flatten)]
        app: AppArg,
        backup: String,
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
    /// List an app's persistent volumes: size, use, node and its state, mounts
    Volumes(AppArg),
    /// Create a persistent volume of a size on a node (the scheduler picks one unless given)
    #[command(name = "volumes:create")]
    VolumesCreate {
        #[command(flatten)]
        app: AppArg,
        /// The volume's name (lowercase letters, digits and -)
        name: String,
        /// Its size, such as 512M, 1G or 1.5G (writes past it fail with ENOSPC)
        #[arg(long)]
        size: String,
        /// The node to create it on [default: the up node holding the fewest volumes]
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
    },
    /// Mount a volume into the processes of one type (restarts that type on the volume's node)
    #[command(name = "volumes:mount")]
    VolumesMount {
        #[command(flatten)]
        app: AppArg,
        name: String,
        /// Where the processes see it, such as /app/uploads
        path: String,
        /// The process type (it then runs one process, on the volume's node)
        #[arg(short = 't', long = "type", value_name = "TYPE", default_value = "web")]
        process_type: String,
    },
    /// Unmount a volume (its files stay; restarts the type that had it)
    #[command(name = "volumes:unmount")]
    VolumesUnmount {
        #[command(flatten)]
        app: AppArg,
        name: String,
    },
    /// Destroy an unmounted volume and its files
    #[command(name = "volumes:destroy")]
    VolumesDestroy {
        #[command(flatten)]
        app: AppArg,
        name: String,
        /// The app's name again, to confirm
        #[arg(long, value_name = "APP")]
        confirm: Option<String>,
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
    /// Deploy an image (no build): one in the controller's registry, or one copied from
    /// another registry (HOST[:PORT]/REPO:TAG, with your `paas registry:login`)
    Deploy {
        #[command(flatten)]
        app: AppArg,
        /// NAME:TAG or NAME@sha256:… in the controller's registry (push it with skopeo), or
        /// HOST[:PORT]/REPO:TAG (or @sha256:…) in another registry
        #[arg(long, value_name = "REF")]
        image: String,
    },
    /// Store your credentials for another registry (checked with it first), used when you
    /// deploy an image from there or build a Dockerfile whose FROM names it
    #[command(name = "registry:login")]
    RegistryLogin {
        /// The registry: HOST or HOST:PORT (docker.io for Docker Hub)
        host: String,
        /// Your user name there
        #[arg(short = 'u', long = "username", value_name = "USER")]
        username: String,
        /// Read the password (or access token) from stdin instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget your credentials for a registry
    #[command(name = "registry:logout")]
    RegistryLogout {
        /// The registry: HOST or HOST:PORT
        host: String,
    },
    /// List the registries you stored credentials for (never the passwords)
    #[command(name = "registry:list")]
    RegistryList,
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
    /// Rebuild the app's last pushed commit without a push, and deploy it
    #[command(name = "builds:create")]
    BuildsCreate {
        #[command(flatten)]
        app: AppArg,
        /// Rebuild every step: no Dockerfile layer cache, an empty buildpack cache
        #[arg(long)]
        no_cache: bool,
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
pub(super) struct AppArg {
    /// The app [default: the app of the current folder's `paas` git remote]
    #[arg(short, long, value_name = "APP")]
    pub(super) app: Option<String>,
}
