//! `/etc/ferry/release.toml`: where the meta-release index is and which
//! keyring signs the bundles. Both are trust decisions of the system's
//! administrator, so they live in the system (under `--root`); command-line
//! flags override them for one run.
//!
//! ```toml
//! meta_release = "https://releases.example.org/meta-release"
//! keyring = "/usr/share/keyrings/example-release.gpg"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the configuration lives, relative to the system root.
pub const CONFIG_PATH: &str = "etc/ferry/release.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}:{line}:{column}: `keyring` must be an absolute path inside the system", path.display())]
    RelativeKeyring {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    meta_release: Option<String>,
    keyring: Option<toml::Spanned<PathBuf>>,
}

/// The release configuration, with flags applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// The file it was read from, when there was one.
    pub path: Option<PathBuf>,
    pub meta_release: Option<String>,
    /// A keyring file on the machine ferry runs on (already joined to the
    /// root when it came from the system's configuration).
    pub keyring: Option<PathBuf>,
}

impl Config {
    /// Reads `root/etc/ferry/release.toml`; a missing file is an empty
    /// configuration. `keyring` in the file names a path inside the system.
    pub fn read(root: &Path) -> Result<Config, ConfigError> {
        let path = root.join(CONFIG_PATH);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text, root, &path)
    }

    /// Parses the text of a configuration file read from `path` of the
    /// system at `root`.
    pub fn parse(text: &str, root: &Path, path: &Path) -> Result<Config, ConfigError> {
        let position = |offset: usize| {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = position(e.span().map_or(0, |s| s.start));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        let keyring = match raw.keyring {
            None => None,
            Some(spanned) => {
                let (line, column) = position(spanned.span().start);
                let inside = spanned.into_inner();
                if !inside.is_absolute() {
                    return Err(ConfigError::RelativeKeyring {
                        path: path.to_path_buf(),
                        line,
                        column,
                    });
                }
                Some(root.join(inside.strip_prefix("/").unwrap_or(&inside)))
            }
        };
        Ok(Config {
            path: Some(path.to_path_buf()),
            meta_release: raw.meta_release,
            keyring,
        })
    }

    /// Flags win over the file.
    pub fn with_overrides(
        mut self,
        meta_release: Option<String>,
        keyring: Option<PathBuf>,
    ) -> Config {
        if meta_release.is_some() {
            self.meta_release = meta_release;
        }
        if keyring.is_some() {
            self.keyring = keyring;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_joins_the_keyring_to_the_root() {
        let config = Config::parse(
            "meta_release = \"http://127.0.0.1/meta\"\nkeyring = \"/usr/share/keyrings/r.gpg\"\n",
            Path::new("/mnt/sys"),
            Path::new("/mnt/sys/etc/ferry/release.toml"),
        )
        .unwrap();
        assert_eq!(
            config.meta_release.as_deref(),
            Some("http://127.0.0.1/meta")
        );
        assert_eq!(
            config.keyring.as_deref(),
            Some(Path::new("/mnt/sys/usr/share/keyrings/r.gpg"))
        );
        let flags = config.with_overrides(None, Some(PathBuf::from("/tmp/k.gpg")));
        assert_eq!(flags.keyring.as_deref(), Some(Path::new("/tmp/k.gpg")));
    }

    #[test]
    fn errors_have_a_line() {
        let path = Path::new("release.toml");
        let unknown = Config::parse("\nmeta = 1\n", Path::new("/"), path).unwrap_err();
        assert!(
            matches!(unknown, ConfigError::Syntax { line: 2, .. }),
            "{unknown}"
        );
        let relative = Config::parse("keyring = \"k.gpg\"\n", Path::new("/"), path).unwrap_err();
        assert!(matches!(
            relative,
            ConfigError::RelativeKeyring { line: 1, .. }
        ));
    }
}
