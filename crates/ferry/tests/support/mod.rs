//! Real components for the end-to-end tests of ferry's commands: `.deb`s
//! built with dpkg-deb, repositories indexed by apt-ftparchive and signed
//! with gpg keys made for the test, served over HTTP on 127.0.0.1, and
//! minbase chroots made by mmdebstrap (cached as a tarball, extracted per
//! test). Tests call `Env::new()` and skip when it says they cannot run.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub fn sh(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Why the end-to-end tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("needs root (chroot, dpkg inside a root)".into());
    }
    for tool in ["mmdebstrap", "dpkg-deb", "apt-ftparchive", "gpg", "chroot"] {
        if !have(tool) {
            return Some(format!(
                "needs {tool} (apt-get install mmdebstrap apt-utils gnupg)"
            ));
        }
    }
    if host_mirror().is_none() {
        return Some("no Debian mirror in the host's apt configuration".into());
    }
    None
}

/// The Debian mirror of the host's apt configuration (never written into
/// the project: read at test time), or `FERRY_TEST_MIRROR`.
pub fn host_mirror() -> Option<String> {
    if let Ok(m) = std::env::var("FERRY_TEST_MIRROR") {
        return Some(m);
    }
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".sources") || name.ends_with(".list") {
                texts.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    for text in texts {
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let uri = match words.as_slice() {
                ["URIs:", uri, ..] => Some(*uri),
                ["deb", rest @ ..] => rest.iter().find(|w| w.contains("://")).copied(),
                _ => None,
            };
            if let Some(uri) = uri {
                if uri.ends_with("/debian") || uri.ends_with("/debian/") {
                    return Some(uri.to_string());
                }
            }
        }
    }
    None
}

/// A bookworm minbase chroot, extracted from a cached mmdebstrap tarball.
pub struct Chroot {
    dir: tempfile::TempDir,
}

fn cached_tarball() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cache = std::env::var_os("FERRY_TEST_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/ferry-test"), PathBuf::from);
    std::fs::create_dir_all(&cache).unwrap();
    let tarball = cache.join("bookworm-minbase-cli.tar");
    if !tarball.is_file() {
        let partial = cache.join(format!("bookworm-minbase-cli.tar.{}", std::process::id()));
        sh(Command::new("mmdebstrap")
            .args(["--variant=minbase", "--quiet", "--format=tar", "bookworm"])
            .arg(&partial)
            .arg(host_mirror().expect("a mirror")));
        std::fs::rename(&partial, &tarball).unwrap();
    }
    tarball
}

impl Chroot {
    pub fn bookworm() -> Chroot {
        let tarball = cached_tarball();
        let dir = tempfile::Builder::new()
            .prefix("ferry-chroot-")
            .tempdir()
            .unwrap();
        sh(Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(dir.path()));
        Chroot { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("chroot")
            .arg(self.path())
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} in the chroot failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn write(&self, inside: &str, bytes: impl AsRef<[u8]>) {
        let path = self.path().join(inside.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn read(&self, inside: &str) -> String {
        std::fs::read_to_string(self.path().join(inside.trim_start_matches('/')))
            .unwrap_or_default()
    }

    /// The installed version of a package, if installed.
    pub fn installed(&self, name: &str) -> Option<String> {
        let out = self.run(&[
            "dpkg-query",
            "-W",
            "-f=${db:Status-Abbrev} ${Version}",
            name,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && text.starts_with("ii")).then(|| text[3..].trim().to_string())
    }

    pub fn ferry(&self, args: &[&str]) -> Output {
        self.ferry_env(args, &[])
    }

    pub fn ferry_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        command.arg("--root").arg(self.path()).args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    }
}

/// Asserts an exit code, showing everything the command printed otherwise.
pub fn expect_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A `.deb` to build.
#[derive(Clone)]
pub struct Deb {
    pub name: String,
    pub version: String,
    control: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
    conffiles: Vec<String>,
    scripts: Vec<(String, String)>,
}

pub fn deb(name: &str, version: &str) -> Deb {
    Deb {
        name: name.into(),
        version: version.into(),
        control: Vec::new(),
        files: vec![(
            format!("/usr/share/doc/{name}/VERSION"),
            version.as_bytes().to_vec(),
        )],
        conffiles: Vec::new(),
        scripts: Vec::new(),
    }
}

impl Deb {
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.control.push(format!("{name}: {value}"));
        self
    }
    pub fn conffile(mut self, path: &str, text: &str) -> Self {
        self.files.push((path.into(), text.as_bytes().to_vec()));
        self.conffiles.push(path.into());
        self
    }
    pub fn script(mut self, name: &str, body: &str) -> Self {
        self.scripts.push((name.into(), body.into()));
        self
    }

    pub fn build(&self, into: &Path) -> PathBuf {
        let tree = tempfile::tempdir().unwrap();
        let debian = tree.path().join("DEBIAN");
        std::fs::create_dir_all(&debian).unwrap();
        let mut control = format!(
            "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: {} for ferry's tests\n",
            self.name, self.version, self.name
        );
        for line in &self.control {
            control.push_str(line);
            control.push('\n');
        }
        std::fs::write(debian.join("control"), control).unwrap();
        if !self.conffiles.is_empty() {
            std::fs::write(debian.join("conffiles"), self.conffiles.join("\n") + "\n").unwrap();
        }
        for (name, body) in &self.scripts {
            let path = debian.join(name);
            std::fs::write(&path, body).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (path, bytes) in &self.files {
            let full = tree.path().join(path.trim_start_matches('/'));
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
        let out = into.join(format!("{}_{}_all.deb", self.name, self.version));
        sh(Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(tree.path())
            .arg(&out));
        out
    }
}

/// A gpg key made for one test.
pub struct Signer {
    home: tempfile::TempDir,
    pub keyring: PathBuf,
}

impl Signer {
    pub fn new(name: &str) -> Signer {
        let home = tempfile::Builder::new()
            .prefix("ferry-gpg-")
            .tempdir()
            .unwrap();
        let gpg = |args: &[&str]| {
            sh(Command::new("gpg")
                .env("GNUPGHOME", home.path())
                .args([
                    "--batch",
                    "--quiet",
                    "--pinentry-mode",
                    "loopback",
                    "--passphrase",
                    "",
                ])
                .args(args))
        };
        gpg(&[
            "--quick-gen-key",
            &format!("{name} <{name}@example.org>"),
            "ed25519",
            "sign",
            "never",
        ]);
        let keyring = home.path().join(format!("{name}.gpg"));
        let exported = gpg(&["--export"]);
        std::fs::write(&keyring, exported.stdout).unwrap();
        Signer { home, keyring }
    }

    fn clearsign(&self, input: &Path, output: &Path) {
        sh(Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--quiet",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--clearsign",
                "-o",
            ])
            .arg(output)
            .arg(input));
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}

/// A signed repository laid out as `dists/stable/main/binary-all` + `pool`.
pub struct Repo {
    pub dir: tempfile::TempDir,
    pub origin: String,
}

impl Repo {
    pub fn new(origin: &str, packages: &[Deb], signer: &Signer) -> Repo {
        let dir = tempfile::Builder::new()
            .prefix("ferry-repo-")
            .tempdir()
            .unwrap();
        let pool = dir.path().join("pool/main");
        std::fs::create_dir_all(&pool).unwrap();
        for p in packages {
            p.build(&pool);
        }
        let binary = dir.path().join("dists/stable/main/binary-all");
        std::fs::create_dir_all(&binary).unwrap();
        let packages_index = sh(Command::new("apt-ftparchive")
            .arg("packages")
            .arg("pool")
            .current_dir(dir.path()));
        std::fs::write(binary.join("Packages"), &packages_index.stdout).unwrap();
        let suite = dir.path().join("dists/stable");
        let release = sh(Command::new("apt-ftparchive")
            .args([
                "-o",
                &format!("APT::FTPArchive::Release::Origin={origin}"),
                "-o",
                &format!("APT::FTPArchive::Release::Label={origin}"),
                "-o",
                "APT::FTPArchive::Release::Suite=stable",
                "-o",
                "APT::FTPArchive::Release::Codename=stable",
                "-o",
                "APT::FTPArchive::Release::Architectures=amd64 all",
                "-o",
                "APT::FTPArchive::Release::Components=main",
                "release",
                ".",
            ])
            .current_dir(&suite));
        std::fs::write(suite.join("Release"), &release.stdout).unwrap();
        signer.clearsign(&suite.join("Release"), &suite.join("InRelease"));
        Repo {
            dir,
            origin: origin.into(),
        }
    }
}

/// A static file server on 127.0.0.1, stopped on drop, that logs requests.
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn serve(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (root, stop2, log) = (root.to_path_buf(), stop.clone(), requests.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = handle(stream, &root, &log);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            stop,
            requests,
        }
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn handle(
    stream: std::net::TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 {
            return Ok(());
        }
        let mut header = String::new();
        while reader.read_line(&mut header)? > 2 {
            header.clear();
        }
        let mut words = request.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
        log.lock().map(|mut l| l.push(path.to_string())).ok();
        let file = root.join(path.trim_start_matches('/'));
        let safe = !path.contains("..");
        match std::fs::read(&file) {
            Ok(body) if safe && file.is_file() => {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )?;
                if method != "HEAD" {
                    stream.write_all(&body)?;
                }
            }
            _ => write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            )?,
        }
        stream.flush()?;
    }
}
