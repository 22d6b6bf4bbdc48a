//! Apt repositories as vendors publish them: `pool/` with real `.deb`s,
//! `dists/SUITE/COMPONENT/binary-ARCH/Packages{,.gz,.xz}`, a `Release` with
//! SHA256 sums, clear-signed `InRelease` and detached `Release.gpg`. The
//! indices are written here (apt itself judges them in the kit's tests);
//! served by [`FileServer`] on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::command::checked;
use crate::http::{FileServer, Request, RequestLog};
use crate::{DebBuilder, Signer, TestkitError};

/// A repository to write or serve; every setter returns the builder.
#[derive(Clone, Debug)]
pub struct Repo {
    name: String,
    origin: String,
    label: String,
    suite: String,
    codename: Option<String>,
    component: String,
    architectures: Vec<String>,
    debs: Vec<DebBuilder>,
    prebuilt: Vec<PathBuf>,
    /// The repository's own key: advertised to clients, and signs unless
    /// `signed_by` says otherwise. Made at write time when not given.
    key: Option<Signer>,
    signed_by: Option<Signer>,
    unsigned: bool,
}

impl Repo {
    /// A repository named `name` (also its Origin and Label), suite
    /// `stable`, component `main`, for the host's architecture.
    pub fn new(name: &str) -> Repo {
        Repo {
            name: name.into(),
            origin: name.into(),
            label: name.into(),
            suite: "stable".into(),
            codename: None,
            component: "main".into(),
            architectures: Vec::new(),
            debs: Vec::new(),
            prebuilt: Vec::new(),
            key: None,
            signed_by: None,
            unsigned: false,
        }
    }

    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = origin.into();
        self
    }
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.into();
        self
    }
    /// The `dists/` directory name and `Suite:` field.
    pub fn suite(mut self, suite: &str) -> Self {
        self.suite = suite.into();
        self
    }
    /// `Codename:`; the suite when not set.
    pub fn codename(mut self, codename: &str) -> Self {
        self.codename = Some(codename.into());
        self
    }
    pub fn component(mut self, component: &str) -> Self {
        self.component = component.into();
        self
    }
    /// `binary-ARCH` indices to write; `Architecture: all` packages go into
    /// each. The host's architecture when not set.
    pub fn architectures<I, S>(mut self, architectures: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.architectures = architectures.into_iter().map(Into::into).collect();
        self
    }
    /// A package, built into the pool when the repository is written.
    pub fn package(mut self, deb: DebBuilder) -> Self {
        self.debs.push(deb);
        self
    }
    pub fn packages(mut self, debs: impl IntoIterator<Item = DebBuilder>) -> Self {
        self.debs.extend(debs);
        self
    }
    /// An already built `.deb`, copied into the pool.
    pub fn deb_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.prebuilt.push(path.into());
        self
    }
    /// Uses `key` as the repository's key: it signs, and clients are given
    /// it (several repositories of one vendor can share a key).
    pub fn key(mut self, key: &Signer) -> Self {
        self.key = Some(key.clone());
        self
    }
    /// Signs with `other` while still advertising the repository's own key:
    /// a client that trusts what it is given sees a bad signature.
    pub fn signed_by(mut self, other: &Signer) -> Self {
        self.signed_by = Some(other.clone());
        self
    }
    /// Writes no `InRelease` and no `Release.gpg`.
    pub fn unsigned(mut self) -> Self {
        self.unsigned = true;
        self
    }

    /// Lays the repository out under `dir` (created if needed).
    pub fn write(self, dir: &Path) -> Result<RepoLayout, TestkitError> {
        let key = match &self.key {
            Some(key) => key.clone(),
            None => Signer::new(&self.name)?,
        };
        let architectures = if self.architectures.is_empty() {
            vec![host_architecture()?]
        } else {
            self.architectures.clone()
        };
        let mut entries = Vec::new();
        for deb in &self.debs {
            let pool = dir.join(pool_dir(&self.component, deb.name()));
            entries.push(PoolEntry::read(dir, &deb.build(&pool)?)?);
        }
        for path in &self.prebuilt {
            let entry = PoolEntry::copy_in(dir, &self.component, path)?;
            entries.push(entry);
        }
        let dists = dir.join("dists").join(&self.suite);
        let mut indices = Vec::new();
        for arch in &architectures {
            let text = packages_index(&entries, arch);
            let relative = format!("{}/binary-{arch}/Packages", self.component);
            let path = dists.join(&relative);
            let parent = path.parent().unwrap_or(&dists);
            std::fs::create_dir_all(parent).map_err(TestkitError::io(parent))?;
            let (gz, xz) = (compress_gz(text.as_bytes()), compress_xz(text.as_bytes()));
            for (suffix, bytes) in [("", text.into_bytes()), (".gz", gz?), (".xz", xz?)] {
                let file = PathBuf::from(format!("{}{suffix}", path.display()));
                std::fs::write(&file, &bytes).map_err(TestkitError::io(&file))?;
                indices.push((format!("{relative}{suffix}"), bytes));
            }
        }
        let release = self.release_text(&architectures, &indices, SystemTime::now());
        let release_path = dists.join("Release");
        std::fs::write(&release_path, release).map_err(TestkitError::io(&release_path))?;
        if !self.unsigned {
            let signer = self.signed_by.as_ref().unwrap_or(&key);
            signer.clearsign(&release_path, &dists.join("InRelease"))?;
            signer.detach_sign(&release_path, &dists.join("Release.gpg"))?;
        }
        // Published beside the archive, as vendors publish their keys.
        let keyring = dir.join("key.gpg");
        std::fs::copy(key.keyring_path(), &keyring).map_err(TestkitError::io(&keyring))?;
        let armored = dir.join("key.asc");
        std::fs::write(&armored, key.armored_key()).map_err(TestkitError::io(&armored))?;
        Ok(RepoLayout {
            root: dir.to_path_buf(),
            name: self.name,
            suite: self.suite,
            component: self.component,
            architectures,
            key,
            debs: entries.into_iter().map(|e| dir.join(e.filename)).collect(),
        })
    }

    /// Writes the repository to a temporary directory and serves it on
    /// 127.0.0.1 until the returned value is dropped.
    pub fn serve(self) -> Result<ServedRepo, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("ferry-repo-")
            .tempdir()
            .map_err(TestkitError::io(std::env::temp_dir()))?;
        let layout = self.write(dir.path())?;
        let server = FileServer::serve_dir(dir.path())?;
        Ok(ServedRepo {
            server,
            layout,
            _dir: dir,
        })
    }

    fn release_text(
        &self,
        architectures: &[String],
        indices: &[(String, Vec<u8>)],
        now: SystemTime,
    ) -> String {
        let mut text = format!(
            "Origin: {}\nLabel: {}\nSuite: {}\nCodename: {}\nDate: {}\nArchitectures: {}\nComponents: {}\nDescription: {} (ferry test repository)\nSHA256:\n",
            self.origin,
            self.label,
            self.suite,
            self.codename.as_deref().unwrap_or(&self.suite),
            rfc2822(now),
            architectures.join(" "),
            self.component,
            self.name,
        );
        for (path, bytes) in indices {
            text.push_str(&format!(
                " {} {:>8} {path}\n",
                sha256_hex(bytes),
                bytes.len()
            ));
        }
        text
    }
}

/// A repository written to disk.
#[derive(Clone, Debug)]
pub struct RepoLayout {
    root: PathBuf,
    name: String,
    suite: String,
    component: String,
    architectures: Vec<String>,
    key: Signer,
    debs: Vec<PathBuf>,
}

impl RepoLayout {
    /// The directory holding `dists/` and `pool/`.
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn suite(&self) -> &str {
        &self.suite
    }
    pub fn component(&self) -> &str {
        &self.component
    }
    pub fn architectures(&self) -> &[String] {
        &self.architectures
    }
    /// The key clients are told to trust.
    pub fn key(&self) -> &Signer {
        &self.key
    }
    /// The `.deb` files in the pool.
    pub fn debs(&self) -> &[PathBuf] {
        &self.debs
    }
    /// The public key as a binary keyring (`ROOT/key.gpg`).
    pub fn keyring_path(&self) -> PathBuf {
        self.root.join("key.gpg")
    }
    /// The public key as ASCII armor.
    pub fn armored_key(&self) -> &str {
        self.key.armored_key()
    }
    /// A deb822 sources entry for this repository at `uri`, trusting the
    /// keyring at `signed_by` (a path as the reading system sees it).
    pub fn sources_entry(&self, uri: &str, signed_by: &str) -> String {
        format!(
            "Types: deb\nURIs: {uri}\nSuites: {}\nComponents: {}\nSigned-By: {signed_by}\n",
            self.suite, self.component
        )
    }
}

/// A repository served on 127.0.0.1; the server stops on drop.
pub struct ServedRepo {
    // Declared first so the server stops before its directory goes.
    server: FileServer,
    layout: RepoLayout,
    _dir: tempfile::TempDir,
}

impl ServedRepo {
    /// `http://127.0.0.1:PORT/`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }
    pub fn layout(&self) -> &RepoLayout {
        &self.layout
    }
    /// The repository's key as a binary keyring file on the host.
    pub fn keyring_path(&self) -> PathBuf {
        self.layout.keyring_path()
    }
    pub fn armored_key(&self) -> &str {
        self.layout.armored_key()
    }
    /// A deb822 sources entry whose `Signed-By:` is the host keyring path.
    pub fn sources_entry(&self) -> String {
        let keyring = self.keyring_path();
        self.layout
            .sources_entry(&self.uri(), &keyring.to_string_lossy())
    }
    /// A deb822 sources entry trusting the keyring at `path`.
    pub fn sources_entry_signed_by(&self, path: &str) -> String {
        self.layout.sources_entry(&self.uri(), path)
    }
    /// Every request answered so far.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }
    /// The live request log, to take marks and read what came after.
    pub fn request_log(&self) -> &RequestLog {
        self.server.log()
    }
}

/// A `.deb` in the pool and its `Packages` stanza.
struct PoolEntry {
    /// Relative to the repository root, as in `Filename:`.
    filename: String,
    architecture: String,
    stanza: String,
}

impl PoolEntry {
    /// Reads the control fields with `dpkg-deb --field` and adds the pool
    /// fields apt checks.
    fn read(root: &Path, deb: &Path) -> Result<PoolEntry, TestkitError> {
        let control = checked(Command::new("dpkg-deb").arg("--field").arg(deb))?.stdout;
        let control = String::from_utf8_lossy(&control).into_owned();
        let architecture = control
            .lines()
            .find_map(|l| l.strip_prefix("Architecture:"))
            .map(|a| a.trim().to_string())
            .ok_or_else(|| {
                TestkitError::Invalid(format!("{}: no Architecture field", deb.display()))
            })?;
        let bytes = std::fs::read(deb).map_err(TestkitError::io(deb))?;
        let filename = deb
            .strip_prefix(root)
            .map_err(|_| {
                TestkitError::Invalid(format!("{} is outside the repository", deb.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let stanza = format!(
            "{}\nFilename: {filename}\nSize: {}\nSHA256: {}\n",
            control.trim_end(),
            bytes.len(),
            sha256_hex(&bytes)
        );
        Ok(PoolEntry {
            filename,
            architecture,
            stanza,
        })
    }

    fn copy_in(root: &Path, component: &str, deb: &Path) -> Result<PoolEntry, TestkitError> {
        let name = checked(
            Command::new("dpkg-deb")
                .args(["--field"])
                .arg(deb)
                .arg("Package"),
        )?
        .stdout;
        let name = String::from_utf8_lossy(&name).trim().to_string();
        let pool = root.join(pool_dir(component, &name));
        std::fs::create_dir_all(&pool).map_err(TestkitError::io(&pool))?;
        let file_name = deb
            .file_name()
            .ok_or_else(|| TestkitError::Invalid(format!("{} is not a file", deb.display())))?;
        let target = pool.join(file_name);
        std::fs::copy(deb, &target).map_err(TestkitError::io(deb))?;
        PoolEntry::read(root, &target)
    }
}

/// `pool/main/s/sdk`, `pool/main/libf/libfoo`, as Debian lays pools out.
fn pool_dir(component: &str, package: &str) -> String {
    let prefix_len = if package.starts_with("lib") && package.len() > 3 {
        4
    } else {
        1
    };
    let prefix: String = package.chars().take(prefix_len).collect();
    format!("pool/{component}/{prefix}/{package}")
}

fn packages_index(entries: &[PoolEntry], arch: &str) -> String {
    let stanzas: Vec<&str> = entries
        .iter()
        .filter(|e| e.architecture == arch || e.architecture == "all")
        .map(|e| e.stanza.as_str())
        .collect();
    stanzas.join("\n")
}

fn compress_gz(bytes: &[u8]) -> Result<Vec<u8>, TestkitError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(TestkitError::io("Packages.gz"))
}

fn compress_xz(bytes: &[u8]) -> Result<Vec<u8>, TestkitError> {
    let mut encoder = xz2::write::XzEncoder::new(Vec::new(), 6);
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(TestkitError::io("Packages.xz"))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The architecture dpkg on this host reports (`amd64`, `arm64`, …).
pub fn host_architecture() -> Result<String, TestkitError> {
    let out = checked(Command::new("dpkg").arg("--print-architecture"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `Sat, 01 Jan 2000 00:00:00 UTC`, the date form of Release files.
fn rfc2822(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} UTC",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn release_dates_are_rfc2822_in_utc() {
        assert_eq!(rfc2822(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(rfc2822(t), "Tue, 29 Feb 2000 01:01:01 UTC");
    }

    #[test]
    fn pools_split_lib_packages_by_four_letters() {
        assert_eq!(pool_dir("main", "sdk"), "pool/main/s/sdk");
        assert_eq!(pool_dir("main", "libfoo1"), "pool/main/libf/libfoo1");
        assert_eq!(pool_dir("contrib", "lib"), "pool/contrib/l/lib");
    }
}
