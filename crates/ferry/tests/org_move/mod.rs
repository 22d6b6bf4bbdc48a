//! The organisation-move fixture that `migration.rs` and `fault_matrix.rs`
//! share: a minbase device installed from the old organisation's signed
//! repository (acme-sdk, acme-daemon, acme-legacy, the admin's edit of
//! sdk.conf), the new organisation's repository served beside it, and the
//! move's profile as `move.toml` in the directory ferry runs in.
// Each test target uses a different part of this module.
#![allow(dead_code)]

use ferry_testkit::{deb, Chroot, DebBuilder, Outcome, Repo, ServedRepo, Signer};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The profile's file name, relative to [`Chroot::workdir`] where ferry runs.
pub const PROFILE: &str = "move.toml";

/// The old organisation's packages, as the seed describes them.
pub fn old_packages() -> Vec<DebBuilder> {
    vec![
        deb("acme-sdk", "1.0").conffile("/etc/acme/sdk.conf", "level = 1\n"),
        deb("acme-daemon", "1.0")
            .conffile("/etc/acme/daemon.conf", "port = 80\n")
            .file("/usr/share/acme/daemon.txt", "the daemon's data\n"),
        deb("acme-legacy", "1.0"),
    ]
}

/// The new organisation's acme-core, which takes acme-daemon's place.
pub fn new_core() -> DebBuilder {
    deb("acme-core", "2.0")
        .conflicts("acme-daemon")
        .replaces("acme-daemon")
        .provides("acme-daemon")
}

/// The new organisation's packages around the given acme-core.
pub fn new_packages(core: DebBuilder) -> Vec<DebBuilder> {
    vec![
        deb("acme-sdk", "1.1").conffile("/etc/acme/sdk.conf", "level = 1\n"),
        core,
    ]
}

/// Which profile the world is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// The organisation move: new source and key, acme-daemon replaced by
    /// acme-core, acme-legacy removed, a full upgrade, verified versions.
    Organisation,
    /// Only the source re-pointed (to a mirror of the same archive).
    RepointOnly,
}

/// A device on the old organisation's repository, the new one served, and
/// the move's profile.
pub struct World {
    pub sys: Chroot,
    /// Set to `None` to take a repository offline.
    pub old: Option<ServedRepo>,
    pub new: Option<ServedRepo>,
    pub new_uri: String,
    pub new_signer: Signer,
}

impl World {
    /// The organisation move to a new repository holding [`new_packages`]
    /// around `core`.
    pub fn new(core: DebBuilder) -> TestResult<World> {
        Self::build(
            |key| Ok(Repo::new("new-org").key(key).packages(new_packages(core))),
            Move::Organisation,
        )
    }

    /// `target` makes the new repository, given the key the profile
    /// installs (a test may sign with another, or not at all).
    pub fn build(
        target: impl FnOnce(&Signer) -> TestResult<Repo>,
        profile: Move,
    ) -> TestResult<World> {
        let sys = Chroot::minbase("bookworm")?.with_ferry_bin(env!("CARGO_BIN_EXE_ferry"));
        let old = Repo::new("old-org").packages(old_packages()).serve()?;
        let new_signer = Signer::new("new-org")?;
        let new = target(&new_signer)?.serve()?;
        // Only the test's repositories: the device never needs the network.
        sys.write_file("/etc/apt/sources.list", "")?;
        sys.write_file(
            "/usr/share/keyrings/old-org.gpg",
            std::fs::read(old.keyring_path())?,
        )?;
        sys.write_file(
            "/etc/apt/sources.list.d/acme.sources",
            format!(
                "# ACME device packages\n{}",
                old.sources_entry_signed_by("/usr/share/keyrings/old-org.gpg")
            ),
        )?;
        sys.run_ok(["apt-get", "update", "-q"])?;
        sys.run_ok([
            "apt-get",
            "install",
            "-y",
            "-q",
            "acme-sdk",
            "acme-daemon",
            "acme-legacy",
        ])?;
        // The admin's local edit, which must survive where the package stays.
        sys.write_file("/etc/acme/sdk.conf", "level = 7 # tuned on site\n")?;
        std::fs::write(
            sys.workdir().join("new-org.gpg"),
            std::fs::read(new_signer.keyring_path())?,
        )?;
        let new_uri = new.uri();
        let profile = match profile {
            Move::RepointOnly => format!(
                "schema = 1\nname = \"acme-mirror\"\n\n[[sources]]\nmatch = {{ uri = \"{}\" }}\nset = {{ uri = \"{new_uri}\", signed_by = \"/usr/share/keyrings/new-org.gpg\" }}\n\n[[keys]]\ninstall_to = \"/usr/share/keyrings/new-org.gpg\"\nfile = \"new-org.gpg\"\n",
                old.uri()
            ),
            Move::Organisation => format!(
                r#"schema = 1
name = "acme-org-move"
description = "ACME devices move from old-org to new-org"

[[sources]]
match = {{ uri = "{old}" }}
set = {{ uri = "{new_uri}", signed_by = "/usr/share/keyrings/new-org.gpg" }}
expect_release = {{ origin = "new-org" }}

[[keys]]
install_to = "/usr/share/keyrings/new-org.gpg"
file = "new-org.gpg"

[packages]
replace = [{{ from = "acme-daemon", to = "acme-core" }}]
remove = ["acme-legacy"]
upgrade = "full"

[verify]
packages = [{{ name = "acme-sdk", version = ">= 1.1" }}, {{ name = "acme-core", version = "= 2.0" }}]
"#,
                old = old.uri()
            ),
        };
        std::fs::write(sys.workdir().join(PROFILE), profile)?;
        Ok(World {
            sys,
            old: Some(old),
            new: Some(new),
            new_uri,
            new_signer,
        })
    }

    pub fn ferry(&self, args: &[&str]) -> Outcome {
        self.sys.ferry(args)
    }

    /// A file inside the device as text.
    pub fn read(&self, inside: &str) -> TestResult<String> {
        Ok(String::from_utf8_lossy(&self.sys.read_file(inside)?).into_owned())
    }

    /// The move is done: the packages replaced, removed and upgraded, the
    /// source re-pointed, the admin's edit kept.
    pub fn assert_moved(&self) -> TestResult {
        let sys = &self.sys;
        assert_eq!(sys.installed("acme-sdk")?.as_deref(), Some("1.1"));
        assert_eq!(sys.installed("acme-core")?.as_deref(), Some("2.0"));
        assert_eq!(sys.installed("acme-daemon")?, None);
        assert_eq!(sys.installed("acme-legacy")?, None);
        let sources = self.read("/etc/apt/sources.list.d/acme.sources")?;
        assert!(
            sources.contains(&format!("URIs: {}", self.new_uri)),
            "{sources}"
        );
        assert_eq!(
            self.read("/etc/acme/sdk.conf")?,
            "level = 7 # tuned on site\n",
            "the admin's edit is kept"
        );
        Ok(())
    }
}
