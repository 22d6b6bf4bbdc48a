//! What is carried from the old OS to the new, end to end: collected from
//! a real old root (ifupdown static IP, hostname, ssh-keygen's host keys,
//! authorized_keys, a backup path and a backup script), handed over as
//! JSON, and applied into a new root and a data directory. NetworkManager
//! reads the keyfiles (`nmcli --offline`), ssh-keygen the host keys, and
//! every file the report lists has the sha256 it says.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use ferry_takeover::carry::{apply, collect, Carried, CarryError, CollectOptions};
use ferry_takeover::config::Config;
use ferry_takeover::network::{parse_keyfile, Kind, Method};
use ferry_testkit::{note_skip, skip_unless, Need};

fn put(root: &Path, rel: &str, text: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

fn keygen(root: &Path, kind: &str) {
    let dir = root.join("etc/ssh");
    fs::create_dir_all(&dir).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "root@old", "-f"])
        .arg(dir.join(format!("ssh_host_{kind}_key")))
        .status()
        .unwrap();
    assert!(status.success());
}

/// An old OS: static eth0, hostname, an ed25519 host key, root's
/// authorized_keys, /etc/app to back up and a script that dumps a database.
fn old_root(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("old");
    put(
        &root,
        "etc/network/interfaces",
        "auto eth0\niface eth0 inet static\n address 192.0.2.7/24\n gateway 192.0.2.1\n\
         dns-nameservers 192.0.2.53\n",
        0o644,
    );
    put(&root, "etc/hostname", "edge-7\n", 0o644);
    put(
        &root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n",
        0o644,
    );
    put(
        &root,
        "root/.ssh/authorized_keys",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin\n",
        0o600,
    );
    put(&root, "etc/app/app.conf", "port = 8080\n", 0o640);
    keygen(&root, "ed25519");
    root
}

fn config(dir: &Path, extra: &str) -> Config {
    let script = dir.join("dump.sh");
    put(
        dir,
        "dump.sh",
        "#!/bin/sh\nprintf 'CREATE TABLE t;\\n' > \"$FERRY_BACKUP_DIR/app.sql\"\n",
        0o755,
    );
    let text = format!(
        "{extra}\n[backup]\npaths = [\"/etc/app\"]\nscript = \"{}\"\n",
        script.display()
    );
    Config::parse(&text, Path::new("takeover.toml")).unwrap()
}

fn options(staging: &Path) -> CollectOptions<'_> {
    CollectOptions {
        staging,
        image: None,
        users: &[],
    }
}

// ------------------------------------------------------------ unhappy paths

#[test]
fn a_missing_backup_path_stops_the_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("old");
    put(&root, "etc/hostname", "edge-7\n", 0o644);
    let config = Config::parse(
        "[backup]\npaths = [\"/etc/gone\"]\n",
        Path::new("takeover.toml"),
    )
    .unwrap();
    let e = collect(&root, &config, options(&tmp.path().join("staging"))).unwrap_err();
    assert!(matches!(e, CarryError::Backup(_)), "{e:?}");
    assert!(e.to_string().contains("/etc/gone"), "{e}");
}

#[test]
fn a_tampered_hand_off_is_refused_when_applied() {
    skip_unless!(Need::Tool("ssh-keygen"));
    let tmp = tempfile::tempdir().unwrap();
    let root = old_root(tmp.path());
    let staging = tmp.path().join("staging");
    let mut carried = collect(&root, &config(tmp.path(), ""), options(&staging)).unwrap();
    // The archive is not the one collected.
    carried.backup.sha256 = "00".repeat(32);
    let new_root = tmp.path().join("new");
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let e = apply(&new_root, &data, &carried).unwrap_err();
    assert!(matches!(e, CarryError::Backup(_)), "{e:?}");
    assert!(!data.join("ferry-takeover").exists());
}

// ------------------------------------------------------------ happy paths

#[test]
fn the_config_leaves_out_what_it_turns_off() {
    skip_unless!(Need::Tool("ssh-keygen"));
    let tmp = tempfile::tempdir().unwrap();
    let root = old_root(tmp.path());
    let config = config(
        tmp.path(),
        "[network]\ncarry = false\n[identity]\nhostname = false\nssh_host_keys = false\n\
         authorized_keys = false\n",
    );
    let carried = collect(&root, &config, options(&tmp.path().join("staging"))).unwrap();
    assert!(carried.network.connections.is_empty());
    assert_eq!(carried.identity.hostname, None);
    assert!(carried.identity.host_keys.is_empty() && carried.identity.authorized_keys.is_empty());
    assert_eq!(carried.identity.machine_id, None);
    let new_root = tmp.path().join("new");
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let report = apply(&new_root, &data, &carried).unwrap();
    assert!(report.network.is_empty() && report.identity.is_empty());
    assert!(!new_root.join("etc").exists());
}

#[test]
fn a_full_round_trip_through_json_into_the_new_os() {
    skip_unless!(Need::Tool("ssh-keygen"));
    let tmp = tempfile::tempdir().unwrap();
    let root = old_root(tmp.path());
    let staging = tmp.path().join("staging");
    let carried = collect(&root, &config(tmp.path(), ""), options(&staging)).unwrap();
    assert_eq!(carried.network.connections.len(), 1);
    assert_eq!(carried.identity.host_keys.len(), 1);

    // Stage 1 hands it to stage 2 as JSON.
    let json = serde_json::to_string(&carried).unwrap();
    let handed: Carried = serde_json::from_str(&json).unwrap();
    assert_eq!(handed, carried);

    let new_root = tmp.path().join("new");
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let report = apply(&new_root, &data, &handed).unwrap();

    // Every file listed is there with the sha256 listed.
    let listed: Vec<_> = report.files().collect();
    assert_eq!(report.network.len(), 1);
    assert_eq!(report.identity.len(), 4, "{:#?}", report.identity);
    assert_eq!(report.backup.len(), 4, "{:#?}", report.backup);
    for file in &listed {
        let (sha, size) = ferry_fetch::sha256_file(&file.path).unwrap();
        assert_eq!(
            (sha.as_str(), size),
            (file.sha256.as_str(), file.size),
            "{file:?}"
        );
    }
    let events = serde_json::to_value(&report).unwrap();
    assert_eq!(events["backup"].as_array().unwrap().len(), 4);

    // The static address, in a keyfile NetworkManager itself reads.
    let keyfile = &report.network[0].path;
    assert!(keyfile.starts_with(new_root.join("etc/NetworkManager/system-connections")));
    assert_eq!(
        fs::metadata(keyfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = fs::read_to_string(keyfile).unwrap();
    let ours = parse_keyfile(&text, keyfile).unwrap();
    assert_eq!(ours.get("ipv4", "method"), Some("manual"));
    let connection = &handed.network.connections[0];
    assert!(matches!(connection.kind, Kind::Ethernet));
    assert_eq!(connection.ipv4.method, Method::Static);
    if ferry_testkit::unmet(&[Need::Tool("nmcli")]).is_none() {
        let nm = Command::new("nmcli")
            .args(["--offline", "connection", "modify", "connection.id"])
            .arg(&connection.id)
            .stdin(fs::File::open(keyfile).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            nm.status.success() && nm.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&nm.stderr)
        );
        let theirs = String::from_utf8(nm.stdout).unwrap();
        assert!(theirs.contains("192.0.2.7/24"), "{theirs}");
        assert!(theirs.contains("192.0.2.1"), "{theirs}");
    } else {
        note_skip!("nmcli is not installed: NetworkManager's reading not checked");
    }

    // Identity: hostname, the host key pair ssh-keygen accepts, authorized_keys.
    assert_eq!(
        fs::read_to_string(new_root.join("etc/hostname")).unwrap(),
        "edge-7\n"
    );
    let key = new_root.join("etc/ssh/ssh_host_ed25519_key");
    let public = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        public.status.success(),
        "{}",
        String::from_utf8_lossy(&public.stderr)
    );
    let written_pub = fs::read_to_string(key.with_extension("pub")).unwrap();
    let derived = String::from_utf8(public.stdout).unwrap();
    assert_eq!(
        derived.split_whitespace().take(2).collect::<Vec<_>>(),
        written_pub.split_whitespace().take(2).collect::<Vec<_>>()
    );
    assert_eq!(
        fs::read(root.join("etc/ssh/ssh_host_ed25519_key")).unwrap(),
        fs::read(&key).unwrap()
    );
    assert_eq!(
        fs::read(new_root.join("root/.ssh/authorized_keys")).unwrap(),
        fs::read(root.join("root/.ssh/authorized_keys")).unwrap()
    );

    // Backup: the config's path and the script's dump, in place.
    let out = data.join("ferry-takeover/backup");
    assert_eq!(
        fs::read_to_string(out.join("files/etc/app/app.conf")).unwrap(),
        "port = 8080\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("script/app.sql")).unwrap(),
        "CREATE TABLE t;\n"
    );
}
