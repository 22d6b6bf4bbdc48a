//! The system a migration acts on: `/` or a mounted root. Commands that
//! change it (apt-get, dpkg, hooks) run inside it — directly for `/`, under
//! `chroot` for any other root — so the root's own apt and dpkg act, never
//! the host's on the root's files. Not for deciding anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed (exit {code:?}):\n{output}")]
    Failed {
        command: String,
        code: Option<i32>,
        output: String,
    },
}

#[derive(Debug, Clone)]
pub struct SystemRoot {
    root: PathBuf,
}

impl SystemRoot {
    pub fn new(root: &Path) -> Self {
        SystemRoot {
            root: root.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The host path of a path inside the root.
    pub fn host_path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// A command that runs `program` inside the root, in the C locale and
    /// without questions.
    pub fn command(&self, program: &str) -> Command {
        let mut command = if self.is_host() {
            Command::new(program)
        } else {
            let mut c = Command::new("chroot");
            c.arg(&self.root).arg(program);
            c
        };
        command
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("APT_LISTCHANGES_FRONTEND", "none")
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            );
        command
    }

    /// Runs a command inside the root and returns its output, or an error
    /// holding everything it printed.
    pub fn run(&self, program: &str, args: &[String]) -> Result<Output, CommandError> {
        let rendered = format!("{program} {}", args.join(" "));
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|source| CommandError::Spawn {
                command: rendered.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(output)
        } else {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Err(CommandError::Failed {
                command: rendered,
                code: output.status.code(),
                output: text.trim().to_string(),
            })
        }
    }
}
