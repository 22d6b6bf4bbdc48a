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
    /// gpg's `--faked-system-time` for signing, for a key living in the past.
    signs_at: Option<&'static str>,
}

/// When [`Signer::expired`] makes its key (gpg's `--faked-system-time`); it
/// expires a day later.
const EXPIRED_MADE_AT: &str = "20200101T000000";
/// When [`Signer::expired`] signs: within the key's day of life.
const EXPIRED_SIGNS_AT: &str = "20200101T010000";

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} {})", self.0.name, self.0.fingerprint)
    }
}

impl Signer {
    /// Generates an ed25519 signing key with user id `NAME <NAME@ferry.invalid>`.
    pub fn new(name: &str) -> Result<Signer, TestkitError> {
        Signer::make(name, None, "never", None)
    }

    /// A key made on 2020-01-01 that expired a day later, and that still
    /// signs as on that day: its signatures were good when made, and a
    /// verifier must refuse them now because the key has expired.
    pub fn expired(name: &str) -> Result<Signer, TestkitError> {
        Signer::make(name, Some(EXPIRED_MADE_AT), "1d", Some(EXPIRED_SIGNS_AT))
    }

    fn make(
        name: &str,
        made_at: Option<&str>,
        expire: &str,
        signs_at: Option<&'static str>,
    ) -> Result<Signer, TestkitError> {
        let home = tempfile::Builder::new()
            .prefix("ferry-gpg-")
            .tempdir()
            .map_err(TestkitError::io(std::env::temp_dir()))?;
        let run = |args: &[&str]| checked(gpg(home.path()).args(args));
        let mut generate = gpg(home.path());
        if let Some(time) = made_at {
            generate.args(["--faked-system-time", time]);
        }
        checked(generate.args([
            "--quick-gen-key",
            &format!("{name} <{name}@ferry.invalid>"),
            "ed25519",
            "sign",
            expire,
        ]))?;
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
            signs_at,
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
        let mut command = gpg(self.0.home.path());
        if let Some(time) = self.0.signs_at {
            command.args(["--faked-system-time", time]);
        }
        checked(
            command
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

#[cfg(test)]
mod tests {
    use super::*;

    /// gpgv's verdict on `file` and its detached signature `sig`.
    fn gpgv(signer: &Signer, sig: &Path, file: &Path) -> String {
        let output = Command::new("gpgv")
            .args(["--status-fd", "1", "--keyring"])
            .arg(signer.keyring_path())
            .arg(sig)
            .arg(file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    #[test]
    fn an_expired_key_signs_but_its_signature_is_expired_now() {
        if crate::unmet(&[crate::Need::Tool("gpg"), crate::Need::Tool("gpgv")]).is_some() {
            crate::skip!("needs gpg and gpgv");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundle");
        std::fs::write(&file, "payload\n").unwrap();
        let sig = dir.path().join("bundle.sig");

        let fresh = Signer::new("fresh").unwrap();
        fresh.detach_sign(&file, &sig).unwrap();
        assert!(gpgv(&fresh, &sig, &file).contains("[GNUPG:] GOODSIG"));

        let expired = Signer::expired("old").unwrap();
        expired.detach_sign(&file, &sig).unwrap();
        let status = gpgv(&expired, &sig, &file);
        assert!(status.contains("[GNUPG:] EXPKEYSIG"), "{status}");
        assert!(!status.contains("[GNUPG:] GOODSIG"), "{status}");
    }
}
