//! The real apt, pointed at a private copy of its configuration and state,
//! so a plan can see what apt *would* do with the target sources while the
//! live `/etc/apt` and `/var/lib/apt/lists` stay untouched.
//!
//! `AptSandbox` builds the private tree (`etc/apt` with the target sources
//! and keys, `var/lib/apt/lists`, `var/cache/apt`) and runs `apt-get` with
//! `-o Dir::Etc=… -o Dir::State=… -o Dir::Cache=…` while reading the
//! system's dpkg status. `parse_simulation` reads `apt-get -s` output.
//! Not for changing the system: runs use `apt-get` on the root itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::profile::Upgrade;
use crate::system::{Architectures, SystemRoot};

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run apt-get: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("`apt-get {command}` failed (exit {code:?}): {stderr}")]
    Failed {
        command: String,
        code: Option<i32>,
        stderr: String,
    },
}

/// One package apt would act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub name: String,
    pub arch: Option<String>,
    /// The installed version, for upgrades, downgrades, reinstalls and removals.
    pub old_version: Option<String>,
    /// The version apt would install, for installs, upgrades and downgrades.
    pub new_version: Option<String>,
    /// `origin:version/suite` as apt prints it, telling where it comes from.
    pub from: Option<String>,
}

/// What `apt-get -s` says a transaction does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Transaction {
    pub install: Vec<Change>,
    pub upgrade: Vec<Change>,
    pub downgrade: Vec<Change>,
    pub reinstall: Vec<Change>,
    pub remove: Vec<Change>,
}

impl Transaction {
    pub fn is_empty(&self) -> bool {
        self.install.is_empty()
            && self.upgrade.is_empty()
            && self.downgrade.is_empty()
            && self.reinstall.is_empty()
            && self.remove.is_empty()
    }

    /// Names of packages that leave the system.
    pub fn removed_names(&self) -> impl Iterator<Item = &str> {
        self.remove.iter().map(|c| c.name.as_str())
    }
}

/// Splits `name:arch` as apt prints multi-arch names.
fn split_arch(name: &str) -> (String, Option<String>) {
    match name.split_once(':') {
        Some((n, a)) => (n.to_string(), Some(a.to_string())),
        None => (name.to_string(), None),
    }
}

/// Reads the `Inst`/`Remv`/`Purg` lines of `apt-get -s` output.
///
/// `Inst name [old] (new origin:ver/suite [arch]) …` is an upgrade or a
/// downgrade when `[old]` is present; `Conf` lines repeat what `Inst`
/// said and are skipped.
pub fn parse_simulation(output: &str) -> Transaction {
    let mut t = Transaction::default();
    for line in output.lines() {
        let (kind, rest) = match line.split_once(' ') {
            Some((k @ ("Inst" | "Remv" | "Purg"), rest)) => (k, rest),
            _ => continue,
        };
        let mut words = rest.splitn(2, ' ');
        let Some(full_name) = words.next() else {
            continue;
        };
        let tail = words.next().unwrap_or("");
        let (name, mut arch) = split_arch(full_name);
        let old_version = tail
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(v, _)| v.to_string());
        let paren = tail.find('(').and_then(|start| {
            tail[start + 1..]
                .find(')')
                .map(|end| &tail[start + 1..start + 1 + end])
        });
        let (new_version, from) = match paren {
            Some(inside) => {
                let mut parts = inside.split(' ');
                let version = parts.next().map(str::to_string);
                let from = parts
                    .next()
                    .filter(|f| !f.starts_with('['))
                    .map(str::to_string);
                if let Some(a) = inside
                    .rsplit_once('[')
                    .and_then(|(_, a)| a.strip_suffix(']'))
                {
                    arch.get_or_insert_with(|| a.to_string());
                }
                (version, from)
            }
            None => (None, None),
        };
        let change = Change {
            name,
            arch,
            old_version,
            new_version,
            from,
        };
        match kind {
            "Inst" => match (&change.old_version, &change.new_version) {
                (None, _) => t.install.push(change),
                (Some(old), Some(new)) => {
                    let order = ferry_deb::VersionRef::split(old)
                        .ok()
                        .zip(ferry_deb::VersionRef::split(new).ok())
                        .map(|(o, n)| n.cmp(&o));
                    match order {
                        Some(std::cmp::Ordering::Less) => t.downgrade.push(change),
                        Some(std::cmp::Ordering::Equal) => t.reinstall.push(change),
                        _ => t.upgrade.push(change),
                    }
                }
                (Some(_), None) => t.upgrade.push(change),
            },
            _ => t.remove.push(change),
        }
    }
    t
}

/// What one `apt-get update` printed (stdout, then stderr) and its exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutput {
    pub exit_code: Option<i32>,
    pub lines: Vec<String>,
}

impl UpdateOutput {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// A private apt configuration and state for one plan.
#[derive(Debug)]
pub struct AptSandbox {
    dir: PathBuf,
    system: SystemRoot,
    /// The root's architectures as its dpkg has them; unknown, apt keeps
    /// its own (and the plan carries the `native-architecture` blocker).
    architectures: Option<Architectures>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AptError + '_ {
    move |source| AptError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl AptSandbox {
    /// Lays out a private apt tree in `dir` for `system`:
    /// `sources` (file name → text) become its only sources, `keys` are
    /// written under the sandbox's own root so `Signed-By` paths resolve
    /// there, the root's preferences and extended_states are copied.
    pub fn create(
        dir: &Path,
        system: &SystemRoot,
        sources: &[(String, String)],
        keys: &[(PathBuf, Vec<u8>)],
    ) -> Result<AptSandbox, AptError> {
        for sub in [
            "etc/apt/sources.list.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "etc/apt/trusted.gpg.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
        ] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(io(&path))?;
        }
        for (target, bytes) in keys {
            let path = dir.join(target.strip_prefix("/").unwrap_or(target));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&path, bytes).map_err(io(&path))?;
        }
        copy_dir_files(
            &system.host_path("etc/apt/preferences.d"),
            &dir.join("etc/apt/preferences.d"),
        )?;
        copy_dir_files(
            &system.host_path("etc/apt/trusted.gpg.d"),
            &dir.join("etc/apt/trusted.gpg.d"),
        )?;
        write_config(dir, system)?;
        for file in [
            "etc/apt/preferences",
            "etc/apt/trusted.gpg",
            "var/lib/apt/extended_states",
        ] {
            let from = system.host_path(file);
            if from.is_file() {
                let to = dir.join(file);
                std::fs::copy(&from, &to).map_err(io(&to))?;
            }
        }
        let sandbox = AptSandbox {
            dir: dir.to_path_buf(),
            system: system.clone(),
            architectures: system.architectures().ok(),
        };
        sandbox.write_sources(sources)?;
        Ok(sandbox)
    }

    /// Writes sources files (name → text) into the sandbox's sources.list.d.
    pub fn write_sources(&self, sources: &[(String, String)]) -> Result<(), AptError> {
        for (name, text) in sources {
            let path = self.dir.join("etc/apt/sources.list.d").join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        Ok(())
    }

    /// A sandbox with the root's *current* sources and the lists apt already
    /// has for them, so packages of the old sources can be fetched without
    /// an update and without touching the root's state.
    pub fn for_current_sources(dir: &Path, system: &SystemRoot) -> Result<AptSandbox, AptError> {
        let mut sources = Vec::new();
        let main_list = system.host_path("etc/apt/sources.list");
        if let Ok(text) = std::fs::read_to_string(&main_list) {
            sources.push(("00-sources.list".to_string(), text));
        }
        if let Ok(entries) = std::fs::read_dir(system.host_path("etc/apt/sources.list.d")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".list") || name.ends_with(".sources") {
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        sources.push((name, text));
                    }
                }
            }
        }
        let sandbox = AptSandbox::create(dir, system, &sources, &[])?;
        sandbox.seed_lists_from_root()?;
        Ok(sandbox)
    }

    /// Copies the root's downloaded lists into the sandbox: sources that
    /// stay the same are then only revalidated by `update`, not fetched again.
    pub fn seed_lists_from_root(&self) -> Result<(), AptError> {
        self.seed_lists_from_root_except(&[])
    }

    /// As `seed_lists_from_root`, leaving out every file whose name starts
    /// with one of `stems`: a target source's lists must come from this
    /// sandbox's own update, never from what the root kept of an earlier one.
    pub fn seed_lists_from_root_except(&self, stems: &[String]) -> Result<(), AptError> {
        copy_dir_files_where(&self.system.lists_dir(), &self.lists_dir(), |name| {
            !stems.iter().any(|stem| name.starts_with(stem.as_str()))
        })
    }

    /// Downloads one package (`name:arch=version`) into `into`.
    pub fn download(&self, spec: &str, into: &Path) -> Result<(), AptError> {
        self.download_all(&[spec.to_string()], into)
    }

    /// `apt-get download` of several `name:arch=version` specs in one run.
    pub fn download_all(&self, specs: &[String], into: &Path) -> Result<(), AptError> {
        if specs.is_empty() {
            return Ok(());
        }
        let output = self
            .command("apt-get")
            .args(["-q", "download"])
            .args(specs)
            .current_dir(into)
            .env("LC_ALL", "C")
            .output()
            .map_err(AptError::Spawn)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(AptError::Failed {
                command: format!("download {}", specs.join(" ")),
                code: output.status.code(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// The `-o` options that confine apt to the sandbox.
    pub fn options(&self) -> Vec<String> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut options = vec![
            format!("Dir::Etc={}", d("etc/apt")),
            format!("Dir::Etc::sourcelist={}", d("etc/apt/sources.list")),
            format!("Dir::Etc::sourceparts={}", d("etc/apt/sources.list.d")),
            format!("Dir::Etc::trusted={}", d("etc/apt/trusted.gpg")),
            format!("Dir::Etc::trustedparts={}", d("etc/apt/trusted.gpg.d")),
            format!("Dir::Etc::preferences={}", d("etc/apt/preferences")),
            format!("Dir::Etc::preferencesparts={}", d("etc/apt/preferences.d")),
            format!("Dir::Etc::parts={}", d("etc/apt/apt.conf.d")),
            format!("Dir::State={}", d("var/lib/apt")),
            format!("Dir::State::lists={}", d("var/lib/apt/lists")),
            format!(
                "Dir::State::extended_states={}",
                d("var/lib/apt/extended_states")
            ),
            format!("Dir::Cache={}", d("var/cache/apt")),
            format!("Dir::State::status={}", self.system.status_path().display()),
            // The sandbox is ours alone; dpkg's lock belongs to the system.
            "Debug::NoLocking=1".to_string(),
            "Acquire::Languages=none".to_string(),
        ];
        if let Some(architectures) = &self.architectures {
            options.push(format!("APT::Architecture={}", architectures.native));
            if !architectures.foreign.is_empty() {
                // apt's list holds the native architecture too.
                let all: Vec<&str> = std::iter::once(architectures.native.as_str())
                    .chain(architectures.foreign.iter().map(String::as_str))
                    .collect();
                options.push(format!("APT::Architectures={}", all.join(",")));
            }
        }
        options
    }

    /// `program` (an apt tool) confined to the sandbox: its configuration is
    /// the root's, read through [`CONFIG`], never the host's.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("APT_CONFIG", self.dir.join(CONFIG));
        for option in self.options() {
            command.arg("-o").arg(option);
        }
        command
    }

    fn apt_get(&self, args: &[&str]) -> Result<String, AptError> {
        let output = self
            .command("apt-get")
            .args(args)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(AptError::Spawn)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // apt-get update exits 0 even when a source failed to verify; its
        // `W:`/`E:` lines on stderr say so, and a plan must not proceed.
        let failed_sources = stderr.lines().any(|l| l.starts_with("E:"));
        if !output.status.success() || failed_sources {
            return Err(AptError::Failed {
                command: args.join(" "),
                code: output.status.code(),
                stderr: stderr.trim().to_string(),
            });
        }
        Ok(stdout)
    }

    /// Downloads the sources' lists into the sandbox and returns what apt
    /// printed. apt exits 0 when a source failed, and non-zero for some
    /// failures only, so the caller reads the lines and the lists for each
    /// source it needs; only a failure to start apt is an error here.
    pub fn update(&self) -> Result<UpdateOutput, AptError> {
        let output = self
            .command("apt-get")
            .args(["update", "-q"])
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(AptError::Spawn)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        Ok(UpdateOutput {
            exit_code: output.status.code(),
            lines: String::from_utf8_lossy(&output.stdout)
                .lines()
                .chain(stderr.lines())
                .map(str::to_string)
                .collect(),
        })
    }

    /// What apt would do to install `install`, remove `remove`, and
    /// upgrade as `upgrade` says: nothing more (`none`), `apt-get upgrade`
    /// (`safe`) or everything (`full`, a dist-upgrade).
    pub fn simulate(
        &self,
        install: &[String],
        remove: &[String],
        upgrade: Upgrade,
    ) -> Result<Transaction, AptError> {
        let verb = match upgrade {
            // A dist-upgrade that also names packages does both at once.
            Upgrade::Full => "dist-upgrade",
            Upgrade::None | Upgrade::Safe => "install",
        };
        let mut args: Vec<String> = vec!["-s".into(), "-y".into(), "-q".into(), verb.into()];
        args.extend(install.iter().cloned());
        args.extend(remove.iter().map(|r| format!("{r}-")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut transaction = self.apt_get(&args).map(|out| parse_simulation(&out))?;
        if upgrade == Upgrade::Safe {
            // apt 2.6 cannot name packages in an `upgrade`; the run does the
            // two in turn, so the plan shows both, each package once.
            let upgrades = parse_simulation(&self.apt_get(&["-s", "-y", "-q", "upgrade"])?);
            for change in upgrades.upgrade {
                let known = transaction
                    .install
                    .iter()
                    .chain(&transaction.upgrade)
                    .chain(&transaction.remove)
                    .any(|c| c.name == change.name && c.arch == change.arch);
                if !known {
                    transaction.upgrade.push(change);
                }
            }
        }
        Ok(transaction)
    }

    /// Where a `Signed-By` key path of the target sources is found while
    /// planning: the sandbox's copy when the profile installs that key, the
    /// root's file otherwise. Plans rewrite Signed-By to this path in the
    /// sandbox's copy of the sources, never in the system's.
    pub fn key_path(&self, signed_by: &Path) -> PathBuf {
        let relative = signed_by.strip_prefix("/").unwrap_or(signed_by);
        let in_sandbox = self.dir.join(relative);
        if in_sandbox.is_file() {
            in_sandbox
        } else {
            self.system.path().join(relative)
        }
    }

    /// The lists directory of the sandbox, where the target's indices are.
    pub fn lists_dir(&self) -> PathBuf {
        self.dir.join("var/lib/apt/lists")
    }
}

/// The file `APT_CONFIG` names, inside the sandbox. apt reads it before
/// anything else, so it decides which configuration parts are read: `-o
/// Dir::Etc::parts` on the command line comes too late, after the host's
/// `/etc/apt/apt.conf.d` has been read (and with it the host's proxies,
/// index targets and hooks).
const CONFIG: &str = "etc/apt/ferry-sandbox.conf";

/// Hooks apt runs around an update or dpkg: a plan is read-only, and these
/// would act on the system they were written for (e.g. refresh its
/// AppStream cache), so the sandbox clears them after reading the rest.
const HOOKS: [&str; 7] = [
    "APT::Update::Pre-Invoke",
    "APT::Update::Post-Invoke",
    "APT::Update::Post-Invoke-Success",
    "DPkg::Pre-Invoke",
    "DPkg::Post-Invoke",
    "DPkg::Pre-Install-Pkgs",
    "DPkg::Post-Invoke-Success",
];

/// Writes the sandbox's configuration: the root's `apt.conf.d` parts and
/// `apt.conf` (what its apt would use), then the hooks cleared.
fn write_config(dir: &Path, system: &SystemRoot) -> Result<(), AptError> {
    let parts = dir.join("etc/apt/apt.conf.d");
    copy_dir_files(&system.host_path("etc/apt/apt.conf.d"), &parts)?;
    let main = dir.join("etc/apt/apt.conf");
    // apt reads the main file after the parts: the hooks are cleared last.
    let mut text =
        std::fs::read_to_string(system.host_path("etc/apt/apt.conf")).unwrap_or_default();
    text.push_str("\n// ferry's plan sandbox runs no hooks.\n");
    for hook in HOOKS {
        text.push_str(&format!("#clear {hook};\n"));
    }
    std::fs::write(&main, text).map_err(io(&main))?;
    let config = dir.join(CONFIG);
    let quoted = |p: &Path| format!("\"{}\"", p.display());
    std::fs::write(
        &config,
        format!(
            "Dir::Etc::parts {};\nDir::Etc::main {};\n",
            quoted(&parts),
            quoted(&main)
        ),
    )
    .map_err(io(&config))
}

fn copy_dir_files(from: &Path, to: &Path) -> Result<(), AptError> {
    copy_dir_files_where(from, to, |_| true)
}

/// Copies the regular files of `from` whose name `keep` accepts.
fn copy_dir_files_where(
    from: &Path,
    to: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<(), AptError> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // apt's `lock` guards the root's own state and holds nothing; it is
        // root's alone (0640), so copying it would fail any plan not run as root.
        if path.is_file() && name != "lock" && keep(&name) {
            let target = to.join(&name);
            std::fs::copy(&path, &target).map_err(io(&target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMULATION: &str = "\
Reading package lists...
The following NEW packages will be installed:
  acme-core
Inst acme-core (2.0 new-org:1.0/stable [all])
Inst libfoo:amd64 [1.0-1] (1.1-1 new-org:1.0/stable [amd64])
Inst tool [2.0] (1.5 new-org:1.0/stable [amd64])
Inst same [1.0] (1.0 new-org:1.0/stable [all])
Remv acme-daemon [1.0]
Purg acme-legacy [1.0]
Conf acme-core (2.0 new-org:1.0/stable [all])
";

    /// A root of files whose dpkg status is `status`, and its sandbox's options.
    fn sandbox_options(status: &str, arch_list: Option<&str>) -> Vec<String> {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/apt")).unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(root.path().join("var/lib/dpkg/status"), status).unwrap();
        if let Some(list) = arch_list {
            std::fs::write(root.path().join("var/lib/dpkg/arch"), list).unwrap();
        }
        let system = SystemRoot::open(root.path()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        AptSandbox::create(dir.path(), &system, &[], &[])
            .unwrap()
            .options()
    }

    /// Real apt's view of the sandbox's configuration (`apt-config dump`).
    #[test]
    fn the_sandbox_reads_the_roots_configuration_not_the_hosts_and_runs_no_hooks() {
        if Command::new("apt-config").arg("-v").output().is_err() {
            eprintln!("skipped: apt-config is not installed");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let conf_d = root.path().join("etc/apt/apt.conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(root.path().join("var/lib/dpkg/status"), "").unwrap();
        std::fs::write(
            conf_d.join("10proxy"),
            "Acquire::http::Proxy \"http://proxy.invalid:3128\";\n",
        )
        .unwrap();
        std::fs::write(
            conf_d.join("50hooks"),
            "APT::Update::Post-Invoke-Success { \"touch /tmp/ferry-hook-ran\"; };\n\
             DPkg::Post-Invoke { \"true\"; };\n",
        )
        .unwrap();
        let system = SystemRoot::open(root.path()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let sandbox = AptSandbox::create(dir.path(), &system, &[], &[]).unwrap();
        let output = sandbox.command("apt-config").arg("dump").output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let dump = String::from_utf8_lossy(&output.stdout);
        assert!(
            dump.contains("Acquire::http::Proxy \"http://proxy.invalid:3128\";"),
            "the root's own settings hold:\n{dump}"
        );
        for hook in HOOKS {
            // A cleared list keeps its key, with no entries.
            assert!(
                !dump.contains(&format!("{hook}:: ")),
                "{hook} cleared:\n{dump}"
            );
        }
        // Whatever the host's /etc/apt/apt.conf.d says, none of it is read:
        // only the sandbox's parts directory is named.
        assert!(
            dump.contains(&format!(
                "Dir::Etc::parts \"{}\";",
                dir.path().join("etc/apt/apt.conf.d").display()
            )),
            "{dump}"
        );
        for entry in std::fs::read_dir("/etc/apt/apt.conf.d")
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("Acquire::") && l.ends_with(';') && !l.contains('{'))
            {
                let key = line.split_whitespace().next().unwrap_or_default();
                if sandbox
                    .options()
                    .iter()
                    .any(|o| o.starts_with(&format!("{key}=")))
                {
                    continue; // ferry sets it on the command line
                }
                assert!(
                    !dump.contains(&format!("{key} ")),
                    "the host's {key} ({}) leaked in:\n{dump}",
                    entry.path().display()
                );
            }
        }
    }

    #[test]
    fn without_a_known_architecture_apt_is_told_none() {
        let options = sandbox_options("", Some("amd64\n"));
        assert!(
            !options.iter().any(|o| o.starts_with("APT::Architecture")),
            "{options:?}"
        );
    }

    #[test]
    fn apt_plans_for_the_roots_architectures_not_the_hosts() {
        let status =
            "Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\nArchitecture: arm64\n";
        let options = sandbox_options(status, None);
        assert!(
            options.contains(&"APT::Architecture=arm64".to_string()),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o.starts_with("APT::Architectures=")),
            "{options:?}"
        );
        let options = sandbox_options(status, Some("arm64\narmhf\n"));
        assert!(
            options.contains(&"APT::Architecture=arm64".to_string()),
            "{options:?}"
        );
        assert!(
            options.contains(&"APT::Architectures=arm64,armhf".to_string()),
            "{options:?}"
        );
    }

    #[test]
    fn reads_apt_get_simulation_output() {
        let t = parse_simulation(SIMULATION);
        assert_eq!(t.install.len(), 1);
        assert_eq!(t.install[0].name, "acme-core");
        assert_eq!(t.install[0].new_version.as_deref(), Some("2.0"));
        assert_eq!(t.install[0].from.as_deref(), Some("new-org:1.0/stable"));
        assert_eq!(t.install[0].arch.as_deref(), Some("all"));
        assert_eq!(t.upgrade[0].name, "libfoo");
        assert_eq!(t.upgrade[0].arch.as_deref(), Some("amd64"));
        assert_eq!(t.upgrade[0].old_version.as_deref(), Some("1.0-1"));
        assert_eq!(t.downgrade[0].name, "tool");
        assert_eq!(t.reinstall[0].name, "same");
        assert_eq!(
            t.removed_names().collect::<Vec<_>>(),
            ["acme-daemon", "acme-legacy"]
        );
    }
}
