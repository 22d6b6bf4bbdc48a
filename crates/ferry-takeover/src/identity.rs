//! The machine's identity carried into the new OS: hostname, SSH host keys,
//! the `authorized_keys` of root and of named users, and machine-id when
//! asked. Collected from the old OS's root into a typed [`Identity`],
//! validated (RFC 1123 hostname, host key pairs that belong together), and
//! written into the new OS's root with the modes sshd insists on.
//!
//! Not for: user accounts, passwords or file ownership on the new OS (the
//! files are written as the running user, root in stage 2, which sshd's
//! StrictModes accepts for any user's authorized_keys).

use std::fmt;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::network::{write_private, NetworkError};

/// Why the identity could not be collected or written.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {hostname:?} is not a valid hostname: {why}", path.display())]
    Hostname {
        path: PathBuf,
        hostname: String,
        why: &'static str,
    },
    #[error("{}: a machine-id is 32 lowercase hex digits, not all zero", path.display())]
    MachineId { path: PathBuf },
    #[error("{}: does not belong to its private key {} ({why})", public.display(), private.display())]
    KeyMismatch {
        private: PathBuf,
        public: PathBuf,
        why: String,
    },
    #[error("{}:{line}: {message}", path.display())]
    Passwd {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("user {user:?} is not in {}", path.display())]
    UnknownUser { user: String, path: PathBuf },
}

impl IdentityError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        IdentityError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<NetworkError> for IdentityError {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Io { path, source } => IdentityError::Io { path, source },
            // write_private only fails with I/O errors; keep any other
            // as one rather than lose it.
            NetworkError::Syntax { path, message, .. } => IdentityError::Io {
                path,
                source: std::io::Error::other(message),
            },
        }
    }
}

/// A hostname that passed [`Hostname::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

impl Hostname {
    /// RFC 1123: at most 253 characters of dot-separated labels, each 1 to
    /// 63 letters, digits or hyphens, not beginning or ending with a hyphen.
    pub fn parse(text: &str) -> Result<Hostname, &'static str> {
        if text.is_empty() {
            return Err("it is empty");
        }
        if text.len() > 253 {
            return Err("it is longer than 253 characters");
        }
        for label in text.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err("a label is empty or longer than 63 characters");
            }
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err("a label holds a character other than a letter, digit or hyphen");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err("a label begins or ends with a hyphen");
            }
        }
        Ok(Hostname(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Hostname {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Hostname::parse(&s)
    }
}

impl From<Hostname> for String {
    fn from(h: Hostname) -> String {
        h.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An SSH host key pair: `etc/ssh/ssh_host_<kind>_key` and its `.pub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The file name of the private key, e.g. `ssh_host_ed25519_key`.
    pub name: String,
    pub private: Vec<u8>,
    /// Absent when the old OS kept no `.pub` (sshd needs only the private key).
    pub public: Option<Vec<u8>>,
}

/// One user's `authorized_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKeys {
    pub user: String,
    /// The home directory, as in the old OS's passwd (absolute, in the OS).
    pub home: PathBuf,
    pub content: Vec<u8>,
}

/// What is carried: each part only when the old OS had it (machine-id only
/// when asked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub hostname: Option<Hostname>,
    pub host_keys: Vec<HostKey>,
    pub authorized_keys: Vec<AuthorizedKeys>,
    pub machine_id: Option<String>,
}

/// What to collect besides hostname and host keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityOptions {
    /// Users (besides root) whose authorized_keys are carried.
    pub users: Vec<String>,
    /// Carry etc/machine-id (the new OS then keeps the old one's identity
    /// in journald, DHCP client ids and so on).
    pub machine_id: bool,
}

/// An identity and what the reader noticed without refusing (a check
/// skipped, a `.pub` without its key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    pub identity: Identity,
    pub notes: Vec<String>,
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, IdentityError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IdentityError::io(path, e)),
    }
}

/// Collects the identity of the OS under `root`.
pub fn collect(root: &Path, options: &IdentityOptions) -> Result<Collected, IdentityError> {
    let mut collected = Collected::default();
    let hostname_path = root.join("etc/hostname");
    if let Some(bytes) = read_optional(&hostname_path)? {
        let text = String::from_utf8_lossy(&bytes);
        // hostname(5): one line, the name; comments are allowed.
        let name = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or_default()
            .to_string();
        let hostname = Hostname::parse(&name).map_err(|why| IdentityError::Hostname {
            path: hostname_path.clone(),
            hostname: name.clone(),
            why,
        })?;
        collected.identity.hostname = Some(hostname);
    }
    collect_host_keys(root, &mut collected)?;
    let passwd = root.join("etc/passwd");
    let homes = read_passwd(&passwd)?;
    let mut users = vec!["root".to_string()];
    users.extend(options.users.iter().filter(|u| *u != "root").cloned());
    for user in users {
        let home = match homes.iter().find(|(name, _)| *name == user) {
            Some((_, home)) => PathBuf::from(home),
            None if user == "root" => PathBuf::from("/root"),
            None => {
                return Err(IdentityError::UnknownUser { user, path: passwd });
            }
        };
        let path = under(root, &home).join(".ssh/authorized_keys");
        match read_optional(&path)? {
            Some(content) => collected.identity.authorized_keys.push(AuthorizedKeys {
                user,
                home,
                content,
            }),
            None => collected
                .notes
                .push(format!("{}: none, nothing to carry", path.display())),
        }
    }
    if options.machine_id {
        let path = root.join("etc/machine-id");
        let bytes = read_optional(&path)?.unwrap_or_default();
        let id = String::from_utf8_lossy(&bytes).trim().to_string();
        let valid = id.len() == 32
            && id
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            && id.chars().any(|c| c != '0');
        if !valid {
            return Err(IdentityError::MachineId { path });
        }
        collected.identity.machine_id = Some(id);
    }
    Ok(collected)
}

/// `path` (absolute in the OS) under `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// (user, home) of every passwd line; none when the file is absent.
fn read_passwd(path: &Path) -> Result<Vec<(String, String)>, IdentityError> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() != 7 || !fields[5].starts_with('/') {
            return Err(IdentityError::Passwd {
                path: path.to_path_buf(),
                line: index + 1,
                message: "expected name:password:uid:gid:gecos:/home:shell".into(),
            });
        }
        out.push((fields[0].to_string(), fields[5].to_string()));
    }
    Ok(out)
}

fn collect_host_keys(root: &Path, collected: &mut Collected) -> Result<(), IdentityError> {
    let dir = root.join("etc/ssh");
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(IdentityError::io(&dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IdentityError::io(&dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let is_key = |n: &str| n.starts_with("ssh_host_") && n.ends_with("_key");
    let keygen = ssh_keygen();
    if keygen.is_none() && names.iter().any(|n| is_key(n)) {
        collected
            .notes
            .push("ssh-keygen not found: host key pairs not checked".into());
    }
    for name in &names {
        if let Some(private_name) = name.strip_suffix(".pub").filter(|n| is_key(n)) {
            if !names.iter().any(|n| n == private_name) {
                collected.notes.push(format!(
                    "{}: no private key beside it, not carried",
                    dir.join(name).display()
                ));
            }
            continue;
        }
        if !is_key(name) {
            continue;
        }
        let private_path = dir.join(name);
        let public_path = dir.join(format!("{name}.pub"));
        let private = fs::read(&private_path).map_err(|e| IdentityError::io(&private_path, e))?;
        let public = read_optional(&public_path)?;
        match (&public, &keygen) {
            (Some(public), Some(keygen)) => {
                check_pair(keygen, &private_path, &public_path, public)?;
            }
            (None, _) => collected.notes.push(format!(
                "{}: no .pub beside it; the private key is carried alone",
                private_path.display()
            )),
            (Some(_), None) => {}
        }
        collected.identity.host_keys.push(HostKey {
            name: name.clone(),
            private,
            public,
        });
    }
    Ok(())
}

fn ssh_keygen() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("ssh-keygen"))
        .find(|p| p.is_file())
}

/// The key type and base64 blob of an OpenSSH public key line (the comment
/// may differ between a key and its `.pub`).
fn key_words(text: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(text);
    let mut words = text.split_whitespace();
    Some((words.next()?.to_string(), words.next()?.to_string()))
}

/// Derives the public key from `private` with `ssh-keygen -y` and compares
/// it with the `.pub`. An empty passphrase is given so that a protected key
/// fails instead of prompting.
fn check_pair(
    keygen: &Path,
    private: &Path,
    public_path: &Path,
    public: &[u8],
) -> Result<(), IdentityError> {
    let mismatch = |why: String| IdentityError::KeyMismatch {
        private: private.to_path_buf(),
        public: public_path.to_path_buf(),
        why,
    };
    let output = Command::new(keygen)
        .args(["-y", "-P", "", "-f"])
        .arg(private)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| IdentityError::io(keygen, e))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(mismatch(format!(
            "ssh-keygen -y cannot read the key: {said}"
        )));
    }
    let derived = key_words(&output.stdout);
    let stated = key_words(public);
    if derived.is_none() || derived != stated {
        return Err(mismatch("the public key ssh-keygen derives differs".into()));
    }
    Ok(())
}

/// Makes `path` with `mode` when it is missing; an existing directory is
/// left as the image made it unless `force` (`.ssh`, which sshd refuses
/// when others can write it).
fn create_dir(path: &Path, mode: u32, force: bool) -> Result<(), IdentityError> {
    if path.is_dir() && !force {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| IdentityError::io(path, e))?;
    // The umask may have taken bits off.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| IdentityError::io(path, e))
}

/// Writes `identity` into the new OS's root `target`: etc/hostname (0644),
/// etc/ssh host keys (0600 private, 0644 public), `~/.ssh/authorized_keys`
/// (0600, in a 0700 `.ssh`), etc/machine-id (0444). Each file atomically.
/// Returns the paths written.
pub fn write(identity: &Identity, target: &Path) -> Result<Vec<PathBuf>, IdentityError> {
    let mut written = Vec::new();
    let etc = target.join("etc");
    if let Some(hostname) = &identity.hostname {
        create_dir(&etc, 0o755, false)?;
        let bytes = format!("{hostname}\n");
        written.push(write_private(&etc, "hostname", bytes.as_bytes(), 0o644)?);
    }
    if !identity.host_keys.is_empty() {
        let ssh = etc.join("ssh");
        create_dir(&ssh, 0o755, false)?;
        for key in &identity.host_keys {
            written.push(write_private(&ssh, &key.name, &key.private, 0o600)?);
            if let Some(public) = &key.public {
                let name = format!("{}.pub", key.name);
                written.push(write_private(&ssh, &name, public, 0o644)?);
            }
        }
    }
    for keys in &identity.authorized_keys {
        let home = under(target, &keys.home);
        // The home itself may be missing on a fresh image: make it the way
        // useradd would (0755; root's /root is 0700).
        create_dir(
            &home,
            if keys.user == "root" { 0o700 } else { 0o755 },
            false,
        )?;
        let ssh = home.join(".ssh");
        create_dir(&ssh, 0o700, true)?;
        written.push(write_private(
            &ssh,
            "authorized_keys",
            &keys.content,
            0o600,
        )?);
    }
    if let Some(id) = &identity.machine_id {
        create_dir(&etc, 0o755, false)?;
        let bytes = format!("{id}\n");
        written.push(write_private(&etc, "machine-id", bytes.as_bytes(), 0o444)?);
    }
    Ok(written)
}
