//! Hostname, SSH host keys, authorized_keys and machine-id collected from
//! a real root directory and written into another with their modes; the
//! validations (RFC 1123 hostname, a host key whose .pub is not its own,
//! machine-id) refuse bad input. Host keys are made by ssh-keygen.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use ferry_takeover::identity::{collect, write, Hostname, IdentityError, IdentityOptions};
use ferry_testkit::{skip_unless, Need};

fn put(root: &Path, rel: &str, text: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn keygen(root: &Path, kind: &str) {
    let dir = root.join("etc/ssh");
    fs::create_dir_all(&dir).unwrap();
    let key = dir.join(format!("ssh_host_{kind}_key"));
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "root@old", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
pi:x:1000:1000:,,,:/home/pi:/bin/bash\n";

// ------------------------------------------------------------ unhappy paths

#[test]
fn hostnames_outside_rfc_1123_are_refused() {
    for bad in [
        "",
        "-lead",
        "trail-",
        "under_score",
        "dot..dot",
        "sp ace",
        &"a".repeat(64),
        &["abc"; 64].join("."),
    ] {
        assert!(Hostname::parse(bad).is_err(), "{bad:?} accepted");
    }
    for good in ["pi", "node-7", "a1.example.org", &"a".repeat(63), "0day"] {
        assert_eq!(Hostname::parse(good).unwrap().as_str(), good);
    }
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "etc/hostname", "my_host\n", 0o644);
    let err = collect(root.path(), &IdentityOptions::default()).unwrap_err();
    assert!(
        matches!(&err, IdentityError::Hostname { hostname, .. } if hostname == "my_host"),
        "{err}"
    );
}

#[test]
fn a_pub_that_is_not_its_keys_is_an_error() {
    skip_unless!(Need::Tool("ssh-keygen"));
    let root = tempfile::tempdir().unwrap();
    keygen(root.path(), "ed25519");
    let other = tempfile::tempdir().unwrap();
    keygen(other.path(), "ed25519");
    fs::copy(
        other.path().join("etc/ssh/ssh_host_ed25519_key.pub"),
        root.path().join("etc/ssh/ssh_host_ed25519_key.pub"),
    )
    .unwrap();
    let err = collect(root.path(), &IdentityOptions::default()).unwrap_err();
    assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("ssh_host_ed25519_key.pub"),
        "{err}"
    );
}

#[test]
fn a_private_key_ssh_keygen_cannot_read_is_an_error() {
    skip_unless!(Need::Tool("ssh-keygen"));
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/ssh/ssh_host_rsa_key",
        "not a key\n",
        0o600,
    );
    put(
        root.path(),
        "etc/ssh/ssh_host_rsa_key.pub",
        "ssh-rsa AAAA root@old\n",
        0o644,
    );
    let err = collect(root.path(), &IdentityOptions::default()).unwrap_err();
    assert!(err.to_string().contains("cannot read the key"), "{err}");
}

#[test]
fn an_unknown_user_a_bad_passwd_and_a_bad_machine_id_are_errors() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "etc/passwd", PASSWD, 0o644);
    let options = IdentityOptions {
        users: vec!["alice".into()],
        machine_id: false,
    };
    let err = collect(root.path(), &options).unwrap_err();
    assert!(
        matches!(&err, IdentityError::UnknownUser { user, .. } if user == "alice"),
        "{err}"
    );

    put(
        root.path(),
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nbroken\n",
        0o644,
    );
    let err = collect(root.path(), &IdentityOptions::default()).unwrap_err();
    assert!(
        matches!(err, IdentityError::Passwd { line: 2, .. }),
        "{err}"
    );

    put(root.path(), "etc/passwd", PASSWD, 0o644);
    let options = IdentityOptions {
        users: vec![],
        machine_id: true,
    };
    for bad in [
        "",
        "uninitialized\n",
        "0123456789ABCDEF0123456789abcdef\n",
        &"0".repeat(32),
    ] {
        put(root.path(), "etc/machine-id", bad, 0o444);
        let err = collect(root.path(), &options).unwrap_err();
        assert!(
            matches!(err, IdentityError::MachineId { .. }),
            "{bad:?}: {err}"
        );
    }
}

// ------------------------------------------------------------ carried over

#[test]
fn the_identity_is_carried_with_its_modes() {
    skip_unless!(Need::Tool("ssh-keygen"));
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/hostname",
        "# set by ops\nkiosk-17\n",
        0o644,
    );
    put(root.path(), "etc/passwd", PASSWD, 0o644);
    keygen(root.path(), "ed25519");
    keygen(root.path(), "rsa");
    // A comment differing between a key and its .pub is fine.
    let pub_path = root.path().join("etc/ssh/ssh_host_rsa_key.pub");
    let text = fs::read_to_string(&pub_path).unwrap();
    fs::write(&pub_path, text.replace("root@old", "renamed")).unwrap();
    put(
        root.path(),
        "etc/ssh/sshd_config",
        "PermitRootLogin no\n",
        0o644,
    );
    put(
        root.path(),
        "root/.ssh/authorized_keys",
        "ssh-ed25519 AAAAroot admin\n",
        0o600,
    );
    put(
        root.path(),
        "home/pi/.ssh/authorized_keys",
        "ssh-ed25519 AAAApi pi\n",
        0o644,
    );
    put(
        root.path(),
        "etc/machine-id",
        "0123456789abcdef0123456789abcdef\n",
        0o444,
    );

    let options = IdentityOptions {
        users: vec!["pi".into()],
        machine_id: true,
    };
    let collected = collect(root.path(), &options).unwrap();
    let id = &collected.identity;
    assert_eq!(id.hostname.as_ref().unwrap().as_str(), "kiosk-17");
    let names: Vec<&str> = id.host_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["ssh_host_ed25519_key", "ssh_host_rsa_key"]);
    let users: Vec<&str> = id.authorized_keys.iter().map(|k| k.user.as_str()).collect();
    assert_eq!(users, ["root", "pi"]);
    assert_eq!(
        id.machine_id.as_deref(),
        Some("0123456789abcdef0123456789abcdef")
    );

    let target = tempfile::tempdir().unwrap();
    let written = write(id, target.path()).unwrap();
    assert_eq!(written.len(), 1 + 4 + 2 + 1);
    let t = target.path();
    assert_eq!(
        fs::read_to_string(t.join("etc/hostname")).unwrap(),
        "kiosk-17\n"
    );
    assert_eq!(mode(&t.join("etc/hostname")), 0o644);
    for kind in ["ed25519", "rsa"] {
        let key = format!("etc/ssh/ssh_host_{kind}_key");
        assert_eq!(
            fs::read(t.join(&key)).unwrap(),
            fs::read(root.path().join(&key)).unwrap()
        );
        assert_eq!(mode(&t.join(&key)), 0o600, "{key}");
        assert_eq!(mode(&t.join(format!("{key}.pub"))), 0o644, "{key}.pub");
    }
    assert!(
        !t.join("etc/ssh/sshd_config").exists(),
        "only host keys are carried"
    );
    assert_eq!(
        fs::read_to_string(t.join("home/pi/.ssh/authorized_keys")).unwrap(),
        "ssh-ed25519 AAAApi pi\n"
    );
    assert_eq!(mode(&t.join("home/pi/.ssh/authorized_keys")), 0o600);
    assert_eq!(mode(&t.join("home/pi/.ssh")), 0o700);
    assert_eq!(mode(&t.join("root/.ssh/authorized_keys")), 0o600);
    assert_eq!(mode(&t.join("root")), 0o700);
    assert_eq!(mode(&t.join("etc/machine-id")), 0o444);
    // Nothing else is left in the directories written into.
    assert_eq!(fs::read_dir(t.join("etc/ssh")).unwrap().count(), 4);

    // What was written is collected again as the same identity (the
    // target has no passwd, so only root's keys are looked for).
    let again = collect(
        t,
        &IdentityOptions {
            users: vec![],
            machine_id: true,
        },
    )
    .unwrap()
    .identity;
    assert_eq!(again.hostname, id.hostname);
    assert_eq!(again.host_keys, id.host_keys);
    assert_eq!(again.machine_id, id.machine_id);
    assert_eq!(again.authorized_keys[..], id.authorized_keys[..1]);
}

#[test]
fn machine_id_is_carried_only_when_asked_and_absent_parts_are_noted() {
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "etc/machine-id",
        "0123456789abcdef0123456789abcdef\n",
        0o444,
    );
    put(
        root.path(),
        "etc/ssh/ssh_host_ecdsa_key.pub",
        "ecdsa-sha2-nistp256 AAAA x\n",
        0o644,
    );
    let collected = collect(root.path(), &IdentityOptions::default()).unwrap();
    assert_eq!(collected.identity.machine_id, None);
    assert!(collected.identity.host_keys.is_empty());
    assert!(collected.identity.hostname.is_none());
    let notes = collected.notes.join("\n");
    assert!(
        notes.contains("ssh_host_ecdsa_key.pub: no private key"),
        "{notes}"
    );
    assert!(notes.contains("root/.ssh/authorized_keys: none"), "{notes}");
    let target = tempfile::tempdir().unwrap();
    let written = write(&collected.identity, target.path()).unwrap();
    assert!(written.is_empty());
    assert!(!target.path().join("etc/machine-id").exists());
}
