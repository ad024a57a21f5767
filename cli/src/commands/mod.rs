//! The command line: global options, one subcommand per topic (Heroku-style names such as
//! `apps:create`), and the errors every command can end with.

use std::path::Path;

use crate::client::{Client, ClientError};
use crate::config::{self, ConfigError, Settings};
use crate::git_remote::{self, GitRemoteError};

mod access;
mod addons;
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
mod line;
mod login;
mod logs;
mod nodes;
mod pg;
mod ps;
mod ps_run;
mod registry;
mod releases;
mod restart;
mod volumes;

pub use line::Cli;
use line::{AppArg, Command};

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
        Command::Volumes(arg) => volumes::list(&ctx, &resolve_app(arg)?),
        Command::VolumesCreate {
            app,
            name,
            size,
            node,
        } => volumes::create(&ctx, &resolve_app(app)?, &name, &size, node.as_deref()),
        Command::VolumesMount {
            app,
            name,
            path,
            process_type,
        } => volumes::mount(&ctx, &resolve_app(app)?, &name, &path, &process_type),
        Command::VolumesUnmount { app, name } => volumes::unmount(&ctx, &resolve_app(app)?, &name),
        Command::VolumesDestroy { app, name, confirm } => {
            volumes::destroy(&ctx, &resolve_app(app)?, &name, confirm.as_deref())
        }
        Command::Addons(arg) => addons::list(&ctx, &resolve_app(arg)?),
        Command::AddonsCreate {
            app,
            service,
            plan,
            as_name,
            wait,
        } => addons::create(
            &ctx,
            &resolve_app(app)?,
            &service,
            plan.as_deref(),
            as_name.as_deref(),
            wait,
        ),
        Command::AddonsInfo { app, addon } => addons::info(&ctx, &resolve_app(app)?, &addon),
        Command::AddonsAttach {
            app,
            addon,
            as_name,
        } => addons::attach(&ctx, &resolve_app(app)?, &addon, as_name.as_deref()),
        Command::AddonsDetach { app, addon } => addons::detach(&ctx, &resolve_app(app)?, &addon),
        Command::AddonsDestroy {
            app,
            addon,
            confirm,
        } => addons::destroy(&ctx, &resolve_app(app)?, &addon, confirm.as_deref()),
        Command::PgPsql {
            app,
            addon,
            command,
        } => {
            let code = pg::psql(
                &ctx,
                &resolve_app(app)?,
                addon.as_deref(),
                command.as_deref(),
            )?;
            if code != 0 {
                std::process::exit(code.clamp(0, 255));
            }
            Ok(())
        }
        Command::PgBackups(arg) => pg::list(&ctx, &resolve_app(arg)?, "pg"),
        Command::RedisBackups(arg) => pg::list(&ctx, &resolve_app(arg)?, "redis"),
        Command::RedisBackupsCapture { app, addon } => {
            pg::capture(&ctx, &resolve_app(app)?, "redis", addon.as_deref())
        }
        Command::RedisBackupsDelete { app, backup } => {
            pg::delete(&ctx, &resolve_app(app)?, "redis", &backup)
        }
        Command::PgBackupsCapture { app, addon } => {
            pg::capture(&ctx, &resolve_app(app)?, "pg", addon.as_deref())
        }
        Command::PgBackupsRestore {
            app,
            backup,
            addon,
            confirm,
        } => pg::restore(
            &ctx,
            &resolve_app(app)?,
            "pg",
            &backup,
            addon.as_deref(),
            confirm.as_deref(),
        ),
        Command::RedisBackupsRestore {
            app,
            backup,
            addon,
            confirm,
        } => pg::restore(
            &ctx,
            &resolve_app(app)?,
            "redis",
            &backup,
            addon.as_deref(),
            confirm.as_deref(),
        ),
        Command::PgBackupsDownload {
            app,
            backup,
            output,
        } => pg::download(
            &ctx,
            &resolve_app(app)?,
            "pg",
            backup.as_deref(),
            output.as_deref(),
        ),
        Command::RedisBackupsDownload {
            app,
            backup,
            output,
        } => pg::download(
            &ctx,
            &resolve_app(app)?,
            "redis",
            backup.as_deref(),
            output.as_deref(),
        ),
        Command::PgBackupsDelete { app, backup } => {
            pg::delete(&ctx, &resolve_app(app)?, "pg", &backup)
        }
        Command::PgBackupsSchedule {
            app,
            addon,
            at,
            keep,
        } => pg::schedule(&ctx, &resolve_app(app)?, addon.as_deref(), &at, keep),
        Command::PgBackupsSchedules(arg) => pg::schedules(&ctx, &resolve_app(arg)?),
        Command::PgBackupsUnschedule { app, addon } => {
            pg::unschedule(&ctx, &resolve_app(app)?, addon.as_deref())
        }
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
        Command::RegistryLogin {
            host,
            username,
            password_stdin,
        } => registry::login(&ctx, &host, &username, password_stdin),
        Command::RegistryLogout { host } => registry::logout(&ctx, &host),
        Command::RegistryList => registry::list(&ctx),
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
        Command::BuildsCreate { app, no_cache } => {
            builds::create(&ctx, &resolve_app(app)?, no_cache)
        }
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
