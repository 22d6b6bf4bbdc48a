//! The takeover config file (TOML, `ferry takeover plan --config FILE`):
//! which image, how stage 2 runs, which disk, what is carried over and
//! backed up, whether a watchdog is required. Unknown fields are refused
//! and every error names file:line:column. docs/takeover.md documents it.
//!
//! Not the checks of the machine against it (`preflight`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// A config file that cannot be used, and where.
#[derive(Debug, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    /// From 1; 0 when the file could not be read at all.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// How stage 2 runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// pivot_root into a tmpfs and flash from there.
    #[default]
    Ram,
    /// A flasher laid into spare space (swap), booted once.
    Flasher,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Ram => "ram",
            Strategy::Flasher => "flasher",
        })
    }
}

/// A sha256 in lower-case hex, checked when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(text: &str) -> Result<Sha256, String> {
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256(text.to_ascii_lowercase()))
        } else {
            Err(format!("`{text}` is not a sha256 (64 hexadecimal digits)"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Sha256::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An absolute path (a relative one would depend on where ferry was started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AbsolutePath(PathBuf);

impl AbsolutePath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = PathBuf::deserialize(d)?;
        if path.is_absolute() {
            Ok(AbsolutePath(path))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{}` is not an absolute path",
                path.display()
            )))
        }
    }
}

/// `[image]`: where the image comes from and what is known of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// Where the image is published (a path or an URL), recorded in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The image file's sha256; the pre-flight refuses an image that differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// The image's CPU architecture (uname's name, e.g. x86_64, aarch64),
    /// for an image whose partition types do not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

/// `[target]`: the disk the image is written to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// A disk device (`/dev/sda`); default: the disk that holds `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<AbsolutePath>,
    /// The image's partition (number) that takes the disk's trailing space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grow: Option<u32>,
    /// The image's partition (number) that receives the backup and events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_partition: Option<u32>,
    /// The image's partition (number) holding the new OS's root, where the
    /// network configuration and identity are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_partition: Option<u32>,
    /// Strategy `flasher`: the image's partition holding the new OS's boot
    /// loader configuration (`grub/grub.cfg` or `boot/grub/grub.cfg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_partition: Option<u32>,
    /// Strategy `flasher`: the disk's partition (usually the swap) whose
    /// space takes the new OS, beside the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_partition: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `[network]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Carry the network configuration over into the new OS.
    #[serde(default = "yes")]
    pub carry: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig { carry: true }
    }
}

/// `[identity]`: what of the machine's identity the new OS keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    #[serde(default = "yes")]
    pub hostname: bool,
    #[serde(default = "yes")]
    pub ssh_host_keys: bool,
    #[serde(default = "yes")]
    pub authorized_keys: bool,
    /// Off by default: two machines from one image must not share it.
    #[serde(default)]
    pub machine_id: bool,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            hostname: true,
            ssh_host_keys: true,
            authorized_keys: true,
            machine_id: false,
        }
    }
}

fn default_script_timeout() -> u64 {
    300
}

/// `[backup]`: files archived into the new OS's data partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    #[serde(default)]
    pub paths: Vec<AbsolutePath>,
    /// The user's own backup script; its output is archived too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<AbsolutePath>,
    #[serde(default = "default_script_timeout")]
    pub script_timeout_seconds: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            paths: Vec::new(),
            script: None,
            script_timeout_seconds: default_script_timeout(),
        }
    }
}

fn default_watchdog_timeout() -> u32 {
    30
}

fn default_stall() -> u32 {
    90
}

/// `[watchdog]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogConfig {
    /// Block the takeover when the machine has no hardware watchdog.
    #[serde(default)]
    pub require: bool,
    /// The hardware timeout stage 2 sets: how long after the last keep-alive
    /// the machine resets.
    #[serde(default = "default_watchdog_timeout")]
    pub timeout_seconds: u32,
    /// How long stage 2 may go without progress before it stops keeping the
    /// watchdog alive (a hung stage 2 then resets the machine).
    #[serde(default = "default_stall")]
    pub stall_seconds: u32,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            require: false,
            timeout_seconds: default_watchdog_timeout(),
            stall_seconds: default_stall(),
        }
    }
}

fn default_deadline() -> u32 {
    600
}

/// The shortest report-in deadline: a new OS needs that long to boot.
pub const MIN_DEADLINE_SECONDS: u32 = 60;

fn deadline_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let seconds = u32::deserialize(d)?;
    if seconds == 0 || seconds >= MIN_DEADLINE_SECONDS {
        Ok(seconds)
    } else {
        Err(serde::de::Error::custom(format!(
            "{seconds} s is too short for a new OS to boot and confirm: \
             at least {MIN_DEADLINE_SECONDS}, or 0 for no deadline"
        )))
    }
}

/// `[confirm]`: how the new OS reports in (strategy `flasher`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmConfig {
    /// Seconds from the new OS's boot within which `ferry takeover
    /// confirm` must run; past it the new OS reboots and, the one-shot
    /// boot being spent, the old OS comes back. 0: no deadline (a new OS
    /// that hangs then needs a reset to fall back).
    #[serde(default = "default_deadline", deserialize_with = "deadline_seconds")]
    pub deadline_seconds: u32,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            deadline_seconds: default_deadline(),
        }
    }
}

/// The whole file; every table may be left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub image: ImageConfig,
    #[serde(default)]
    pub target: TargetConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub identity: IdentityConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub watchdog: WatchdogConfig,
    #[serde(default)]
    pub confirm: ConfirmConfig,
}

impl Config {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the config: {e}"),
        })?;
        Config::parse(&text, path)
    }

    /// Checks a config's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start).min(text.len());
            // toml's span is a byte offset; a column counts characters.
            let before = text.get(..offset).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |n| n + 1);
            let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
            ConfigError {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("takeover.toml"))
    }

    #[test]
    fn a_typo_in_a_field_is_refused_at_its_line_and_column() {
        let e = parse("strategy = \"ram\"\n[identity]\n  hostnme = true\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
        assert!(e.message.contains("hostnme"), "{e}");
        assert!(e.to_string().starts_with("takeover.toml:3:3: "), "{e}");
    }

    #[test]
    fn an_unknown_strategy_and_a_bad_checksum_are_refused_where_they_are() {
        let e = parse("strategy = \"usb\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 12), "{e}");
        let e = parse("[image]\nsha256 = \"abc\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("not a sha256"), "{e}");
        let e = parse("[backup]\npaths = [\"etc/x\"]\n").unwrap_err();
        assert!(e.message.contains("absolute"), "{e}");
    }

    #[test]
    fn an_empty_file_means_the_documented_defaults() {
        let config = parse("").unwrap();
        assert_eq!(config.strategy, Strategy::Ram);
        assert!(config.network.carry);
        assert!(config.identity.hostname && config.identity.ssh_host_keys);
        assert!(!config.identity.machine_id);
        assert!(!config.watchdog.require);
        assert_eq!(config.backup.script_timeout_seconds, 300);
        assert_eq!(config.target.disk, None);
        assert_eq!(config.confirm.deadline_seconds, 600);
    }

    #[test]
    fn a_deadline_too_short_to_boot_is_refused_and_zero_means_none() {
        let e = parse("[confirm]\ndeadline_seconds = 20\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("too short"), "{e}");
        let none = parse("[confirm]\ndeadline_seconds = 0\n").unwrap();
        assert_eq!(none.confirm.deadline_seconds, 0);
        let short = parse("[confirm]\ndeadline_seconds = 60\n").unwrap();
        assert_eq!(short.confirm.deadline_seconds, 60);
    }

    #[test]
    fn a_full_file_is_read_and_round_trips_through_json() {
        let sha = "ab".repeat(32);
        let text = format!(
            "strategy = \"flasher\"\n[image]\nsource = \"https://example.org/os.img.gz\"\n\
             sha256 = \"{}\"\narchitecture = \"aarch64\"\n[target]\ndisk = \"/dev/mmcblk0\"\n\
             grow = 4\ndata_partition = 4\n[network]\ncarry = false\n[identity]\nmachine_id = true\n\
             [backup]\npaths = [\"/etc/app\"]\nscript = \"/usr/local/bin/dump\"\n\
             script_timeout_seconds = 60\n[watchdog]\nrequire = true\n",
            sha.to_uppercase()
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.strategy, Strategy::Flasher);
        assert_eq!(config.image.sha256.as_ref().unwrap().as_str(), sha);
        assert_eq!(
            config.target.disk.as_ref().unwrap().as_path(),
            Path::new("/dev/mmcblk0")
        );
        assert!(!config.network.carry && config.identity.machine_id && config.watchdog.require);
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), config);
    }
}
