//! The fleet over HTTPS, as a user runs it: the real `ferry fleet serve
//! --tls-cert --tls-key [--client-ca]` process and real `ferry agent` and
//! `ferry fleet` processes on loopback, with certificates from a private
//! CA made by rcgen. An agent that trusts the wrong CA refuses to talk and
//! keeps its outbox until it is given the right one; plain HTTP, an expired
//! server certificate, a missing or foreign client certificate and a device
//! token over another device's certificate are all refused; bad certificate
//! or key files stop the server before it listens.

// Only the process type and helpers: this test starts its servers with TLS flags.
#[allow(dead_code)]
mod fleet_common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fleet_common::{text, Server, FERRY};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority that issues PEM files into a directory.
struct Ca {
    cert: Certificate,
    key: KeyPair,
    dir: PathBuf,
    name: String,
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("a CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("a self-signed CA");
        std::fs::write(dir.join(format!("{name}-ca.pem")), cert.pem()).expect("the CA file");
        Ca {
            cert,
            key,
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// Issues `file.pem` and `file.key` for `names` (DNS names or IPs);
    /// `expired` makes one that ran out in 2021.
    fn issue(&self, file: &str, names: &[&str], client: bool, expired: bool) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, file.to_string());
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("a signed certificate");
        let (pem, key_file) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&pem, cert.pem()).expect("the certificate file");
        std::fs::write(&key_file, key.serialize_pem()).expect("the key file");
        (pem, key_file)
    }
}

/// A test's directory: operator token, database, CAs, state dirs.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            dir.path().join("operator.token"),
            "tls-test-operator-token\n",
        )
        .expect("the operator token");
        Lab { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn serve_command(&self, tls: &[&Path], flags: &[&str]) -> Command {
        let mut command = Command::new(FERRY);
        command
            .args([
                "fleet",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--interval",
                "1",
            ])
            .arg("--db")
            .arg(self.path("fleet.db"))
            .arg("--operator-token-file")
            .arg(self.path("operator.token"));
        for (flag, file) in flags.iter().zip(tls) {
            command.arg(flag).arg(file);
        }
        command
    }

    /// Starts an HTTPS server; `client_ca` turns on mutual TLS.
    fn serve(&self, cert: &Path, key: &Path, client_ca: Option<&Path>) -> Server {
        let mut files = vec![cert, key];
        files.extend(client_ca);
        let mut child = self
            .serve_command(&files, &["--tls-cert", "--tls-key", "--client-ca"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ferry fleet serve starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("a `listening on` line, got {line:?}"))
            .to_string();
        assert!(url.starts_with("https://"), "{url}");
        Server { child, url }
    }

    /// `ferry fleet ARGS --server URL --operator-token-file F` plus `tls`.
    fn fleet(&self, url: &str, args: &[&str], tls: &[(&str, &Path)]) -> Output {
        let mut command = Command::new(FERRY);
        command
            .arg("fleet")
            .args(args)
            .args(["--json", "--server", url])
            .arg("--operator-token-file")
            .arg(self.path("operator.token"));
        for (flag, file) in tls {
            command.arg(flag).arg(file);
        }
        command.output().expect("ferry fleet runs")
    }

    fn enrol(&self, url: &str, name: &str, tls: &[(&str, &Path)]) -> String {
        let state = self.path(name).display().to_string();
        let output = self.fleet(url, &["enrol", "--state", &state], tls);
        assert!(output.status.success(), "{}", text(&output));
        let answer: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("enrolment JSON");
        answer["device_id"].as_str().expect("an id").to_string()
    }

    fn agent_once(&self, name: &str, tls: &[(&str, &Path)]) -> Output {
        let mut command = Command::new(FERRY);
        command
            .args(["agent", "--once", "--json", "--state"])
            .arg(self.path(name))
            .arg("--events")
            .arg(self.path(&format!("{name}.events.jsonl")));
        for (flag, file) in tls {
            command.arg(flag).arg(file);
        }
        command.output().expect("ferry agent runs")
    }

    fn log_events(&self, name: &str, from: usize, to: usize) {
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(&format!("{name}.events.jsonl")))
            .expect("the event log");
        for i in from..to {
            let event = serde_json::json!({
                "ts": "2026-12-02T10:00:00.000Z", "device": name, "migration": "m1",
                "step": "packages", "function": "apt", "uptime": i as f64,
                "state": "CMDLOG", "msg": format!("{name} line {i}"),
            });
            writeln!(log, "{event}").expect("an event written");
        }
    }

    fn outbox_lines(&self, name: &str) -> usize {
        std::fs::read_to_string(self.path(name).join("outbox.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// The messages the server holds for `device`, with their seqs.
    fn stored(&self, url: &str, device: &str, tls: &[(&str, &Path)]) -> Vec<(u64, String)> {
        let output = self.fleet(url, &["events", device], tls);
        assert!(output.status.success(), "{}", text(&output));
        let answer: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        answer["events"]
            .as_array()
            .expect("an event list")
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().expect("a seq"),
                    e["event"]["msg"].as_str().expect("a msg").to_string(),
                )
            })
            .collect()
    }
}

fn expected(name: &str, k: usize) -> Vec<(u64, String)> {
    (0..k)
        .map(|i| (i as u64 + 1, format!("{name} line {i}")))
        .collect()
}

/// What a command said: its stderr, and its stdout where `--json` puts
/// the error.
fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn an_agent_over_https_enrols_polls_and_delivers_and_the_wrong_ca_loses_nothing() {
    let lab = Lab::new();
    let ca = Ca::new(lab.dir.path(), "fleet");
    let other = Ca::new(lab.dir.path(), "other");
    let (cert, key) = ca.issue("server", &["localhost", "127.0.0.1"], false, false);
    let server = lab.serve(&cert, &key, None);
    let trust = ca.ca_file();
    let right: [(&str, &Path); 1] = [("--ca", &trust)];
    let wrong_file = other.ca_file();
    let wrong: [(&str, &Path); 1] = [("--ca", &wrong_file)];

    let device = lab.enrol(&server.url, "a", &right);
    lab.log_events("a", 0, 5);

    // The wrong CA: no connection, the events stay in the outbox.
    let refused = lab.agent_once("a", &wrong);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        said(&refused).contains("certificate"),
        "the error names the certificate: {}",
        text(&refused)
    );
    assert_eq!(lab.outbox_lines("a"), 5, "the outbox keeps every event");
    assert!(lab.stored(&server.url, &device, &right).is_empty());

    // Given the right CA, it delivers them, each once.
    let delivered = lab.agent_once("a", &right);
    assert!(delivered.status.success(), "{}", text(&delivered));
    let cycle: serde_json::Value = serde_json::from_slice(&delivered.stdout).expect("JSON");
    assert_eq!(cycle["delivered"], 5, "{cycle}");
    assert_eq!(cycle["pending"], 0, "{cycle}");
    assert_eq!(lab.stored(&server.url, &device, &right), expected("a", 5));

    // It goes on polling and delivering over HTTPS; nothing doubled.
    lab.log_events("a", 5, 8);
    let again = lab.agent_once("a", &right);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(lab.stored(&server.url, &device, &right), expected("a", 8));
    let devices = lab.fleet(&server.url, &["devices"], &right);
    assert!(devices.status.success(), "{}", text(&devices));
    let devices: serde_json::Value = serde_json::from_slice(&devices.stdout).expect("JSON");
    assert!(
        devices["devices"][0]["last_seen"].is_string(),
        "the agent polled: {devices}"
    );
}

#[test]
fn plain_http_to_the_tls_port_fails_and_the_server_stays_up() {
    let lab = Lab::new();
    let ca = Ca::new(lab.dir.path(), "fleet");
    let (cert, key) = ca.issue("server", &["127.0.0.1"], false, false);
    let server = lab.serve(&cert, &key, None);
    let plain = server.url.replacen("https://", "http://", 1);
    let output = lab.fleet(&plain, &["devices"], &[]);
    assert!(!output.status.success(), "{}", text(&output));
    // And an HTTPS client that does not trust the private CA is refused.
    let untrusted = lab.fleet(&server.url, &["devices"], &[]);
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
    assert!(
        said(&untrusted).contains("certificate"),
        "{}",
        text(&untrusted)
    );
    let trust = ca.ca_file();
    let fine = lab.fleet(&server.url, &["devices"], &[("--ca", &trust)]);
    assert!(fine.status.success(), "{}", text(&fine));
}

#[test]
fn an_expired_server_certificate_is_refused() {
    let lab = Lab::new();
    let ca = Ca::new(lab.dir.path(), "fleet");
    let (cert, key) = ca.issue("server", &["127.0.0.1"], false, true);
    let server = lab.serve(&cert, &key, None);
    let trust = ca.ca_file();
    let state = lab.path("a").display().to_string();
    let output = lab.fleet(
        &server.url,
        &["enrol", "--state", &state],
        &[("--ca", &trust)],
    );
    assert!(!output.status.success(), "{}", text(&output));
    let message = said(&output).to_lowercase();
    assert!(
        message.contains("certificate") && message.contains("expired"),
        "{}",
        text(&output)
    );
    assert!(!lab.path("a").join("identity.json").exists());
}

#[test]
fn mutual_tls_wants_a_certificate_from_the_client_ca_and_binds_device_tokens() {
    let lab = Lab::new();
    let ca = Ca::new(lab.dir.path(), "fleet");
    let clients = Ca::new(lab.dir.path(), "clients");
    let foreign = Ca::new(lab.dir.path(), "foreign");
    let (cert, key) = ca.issue("server", &["127.0.0.1"], false, false);
    let server = lab.serve(&cert, &key, Some(&clients.ca_file()));
    let trust = ca.ca_file();
    let (op_cert, op_key) = clients.issue("operator", &["operator"], true, false);
    let (bad_cert, bad_key) = foreign.issue("intruder", &["operator"], true, false);
    let operator: [(&str, &Path); 3] = [("--ca", &trust), ("--cert", &op_cert), ("--key", &op_key)];

    // No client certificate, or one another CA signed: refused.
    let none = lab.fleet(&server.url, &["devices"], &[("--ca", &trust)]);
    assert!(!none.status.success(), "{}", text(&none));
    let intruder = lab.fleet(
        &server.url,
        &["devices"],
        &[("--ca", &trust), ("--cert", &bad_cert), ("--key", &bad_key)],
    );
    assert!(!intruder.status.success(), "{}", text(&intruder));
    let fine = lab.fleet(&server.url, &["devices"], &operator);
    assert!(fine.status.success(), "{}", text(&fine));

    let device = lab.enrol(&server.url, "a", &operator);
    let other = lab.enrol(&server.url, "b", &operator);
    let (dev_cert, dev_key) = clients.issue("device-a", &[&device], true, false);
    let (other_cert, other_key) = clients.issue("device-b", &[&other], true, false);
    lab.log_events("a", 0, 3);

    // The device's token without a certificate: no handshake.
    let bare = lab.agent_once("a", &[("--ca", &trust)]);
    assert!(!bare.status.success(), "{}", text(&bare));
    // With another device's certificate (the CA signed it): 403, the token
    // is bound to its own device's certificate.
    let stolen = lab.agent_once(
        "a",
        &[
            ("--ca", &trust),
            ("--cert", &other_cert),
            ("--key", &other_key),
        ],
    );
    assert!(!stolen.status.success(), "{}", text(&stolen));
    assert!(said(&stolen).contains("403"), "{}", text(&stolen));
    assert_eq!(lab.outbox_lines("a"), 3);
    // With its own: delivered, once.
    let own = lab.agent_once(
        "a",
        &[("--ca", &trust), ("--cert", &dev_cert), ("--key", &dev_key)],
    );
    assert!(own.status.success(), "{}", text(&own));
    assert_eq!(
        lab.stored(&server.url, &device, &operator),
        expected("a", 3)
    );
}

#[test]
fn bad_certificate_or_key_files_stop_the_server_before_it_listens() {
    let lab = Lab::new();
    let ca = Ca::new(lab.dir.path(), "fleet");
    let (cert, key) = ca.issue("server", &["127.0.0.1"], false, false);
    let (_, other_key) = ca.issue("other", &["127.0.0.1"], false, false);
    let missing = lab.path("missing.pem");
    let garbage = lab.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("a garbage file");
    let cases: [(&Path, &Path, &Path); 4] = [
        (&missing, &key, &missing),
        (&garbage, &key, &garbage),
        (&cert, &garbage, &garbage),
        // A key that is not the certificate's.
        (&cert, &other_key, &other_key),
    ];
    for (cert_file, key_file, named) in cases {
        let output = lab
            .serve_command(&[cert_file, key_file], &["--tls-cert", "--tls-key"])
            .output()
            .expect("ferry fleet serve runs");
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            said(&output).contains(&named.display().to_string()),
            "the error names {}: {}",
            named.display(),
            text(&output)
        );
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains("listening"),
            "{}",
            text(&output)
        );
    }
    // A client's CA file that is not one: exit 2 naming it, before any request.
    let output = lab.fleet("https://127.0.0.1:9", &["devices"], &[("--ca", &garbage)]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        said(&output).contains(&garbage.display().to_string()),
        "{}",
        text(&output)
    );
}
