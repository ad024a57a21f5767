//! An app's source folder for the journeys: a git repository with `main` checked out,
//! driven by the real `git` client in a clean environment (no prompts, no helpers).

use std::process::{Command, Output};

use anyhow::Result;

/// An app's source folder: a git repository with `main` checked out.
pub struct AppDir {
    pub dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

/// What a `git push` printed and whether it succeeded.
pub struct Push {
    pub ok: bool,
    pub output: String,
}

impl AppDir {
    pub fn new() -> AppDir {
        let app = AppDir {
            dir: tempfile::Builder::new()
                .prefix("paas-app-")
                .tempdir()
                .unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        app.git(&["init", "-q", "-b", "main"]).unwrap();
        app
    }

    pub fn write(&self, path: &str, content: &str) -> &AppDir {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        self
    }

    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A"]).unwrap();
        self.git(&["commit", "-q", "-m", message]).unwrap();
    }

    /// Runs git in the app folder with a clean environment (no prompts, no helpers).
    pub fn git(&self, args: &[&str]) -> Result<Output> {
        Ok(self.git_command(args).output()?)
    }

    /// The command [`AppDir::git`] runs, to spawn it (and kill it) yourself.
    pub fn git_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(self.dir.path())
            .env("HOME", self.home.path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args([
                "-c",
                "credential.helper=",
                "-c",
                "user.name=paas test",
                "-c",
                "user.email=test@paas.invalid",
            ])
            .args(args);
        cmd
    }

    /// `git push <url> <refspec>`; the combined output, as the user sees it.
    pub fn push(&self, url: &str, refspec: &str) -> Push {
        let out = self.git(&["push", url, refspec]).unwrap();
        let mut output = String::from_utf8_lossy(&out.stdout).to_string();
        output.push_str(&String::from_utf8_lossy(&out.stderr));
        Push {
            ok: out.status.success(),
            output,
        }
    }
}

impl Default for AppDir {
    fn default() -> Self {
        AppDir::new()
    }
}
