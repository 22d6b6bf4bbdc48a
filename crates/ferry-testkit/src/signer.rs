//! A gpg signing key made for one test, in its own temporary GNUPGHOME, so
//! tests never touch the user's keys and each repository can be trusted,
//! or distrusted, on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use crate::command::checked;
use crate::TestkitError;

/// A signing key; cloning shares the key (one GNUPGHOME, one agent).
#[derive(Clone)]
pub struct Signer(Arc<Inner>);

struct Inner {
    home: tempfile::TempDir,
    name: String,
    fingerprint: String,
    keyring: PathBuf,
    armored: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.0.name, self.0.fingerprint)
    }
}

impl Signer {
    /// Generates an ed25519 signing key with user id `NAME <NAME@ferry.invalid>`.
    pub fn new(name: &str) -> Result<Signer, TestkitError> {
        let home = tempfile::Builder::new()
            .prefix("ferry-gpg-")
            .tempdir()
            .map_err(TestkitError::io(std::env::temp_dir()))?;
        let run = |args: &[&str]| checked(gpg(home.path()).args(args));
        run(&[
            "--quick-gen-key",
            &format!("{name} <{name}@ferry.invalid>"),
            "ed25519",
            "sign",
            "never",
        ])?;
        let listing = run(&["--with-colons", "--list-keys"])?;
        let listing = String::from_utf8_lossy(&listing.stdout);
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|f| !f.is_empty()))
            .ok_or_else(|| TestkitError::Invalid(format!("no fingerprint in:\n{listing}")))?
            .to_string();
        let binary = run(&["--export", &fingerprint])?.stdout;
        let keyring = home.path().join(format!("{name}.gpg"));
        std::fs::write(&keyring, binary).map_err(TestkitError::io(&keyring))?;
        let armored = run(&["--armor", "--export", &fingerprint])?.stdout;
        Ok(Signer(Arc::new(Inner {
            name: name.into(),
            fingerprint,
            keyring,
            armored: String::from_utf8_lossy(&armored).into_owned(),
            home,
        })))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The primary key's fingerprint, 40 hex digits.
    pub fn fingerprint(&self) -> &str {
        &self.0.fingerprint
    }

    /// The public key as a binary keyring file, usable in `Signed-By:`.
    pub fn keyring_path(&self) -> &Path {
        &self.0.keyring
    }

    /// The GNUPGHOME holding the secret key, for tools that sign with it
    /// themselves (`ferry release bundle --gnupghome`).
    pub fn home(&self) -> &Path {
        self.0.home.path()
    }

    /// The public key as ASCII armor (what vendors publish as `key.asc`).
    pub fn armored_key(&self) -> &str {
        &self.0.armored
    }

    /// Writes a clear-signed copy of `input` (an `InRelease`).
    pub fn clearsign(&self, input: &Path, output: &Path) -> Result<(), TestkitError> {
        self.sign("--clearsign", input, output)
    }

    /// Writes an armored detached signature of `input` (a `Release.gpg`).
    pub fn detach_sign(&self, input: &Path, output: &Path) -> Result<(), TestkitError> {
        self.sign("--detach-sign", input, output)
    }

    fn sign(&self, how: &str, input: &Path, output: &Path) -> Result<(), TestkitError> {
        checked(
            gpg(self.0.home.path())
                .args(["--yes", "--armor", "--local-user", &self.0.fingerprint, how])
                .arg("--output")
                .arg(output)
                .arg(input),
        )
        .map(drop)
    }
}

fn gpg(home: &Path) -> Command {
    let mut command = Command::new("gpg");
    command.env("GNUPGHOME", home).args([
        "--batch",
        "--quiet",
        "--no-tty",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    command
}

impl Drop for Inner {
    fn drop(&mut self) {
        // gpg started an agent for this home; it must not outlive the test.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}
