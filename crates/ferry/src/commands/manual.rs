//! The written sections of the man pages, EXIT STATUS, FILES, EXAMPLES and
//! SEE ALSO, per page (`ferry-plan`, `ferry-archive-excuses`, …); the rest
//! of each page comes from the clap definitions (`generate.rs`). A page
//! with nothing written here still gets the exit codes, ferry's files and
//! an example, so a command added to `cli.rs` is never without them.

/// What a page says besides what clap generates.
struct Written {
    /// What this command's exit codes mean, beyond the common ones.
    exit: &'static str,
    /// Files this command reads or writes: (path, what).
    files: &'static [(&'static str, &'static str)],
    /// (what it does, the command line).
    examples: &'static [(&'static str, &'static str)],
}

const NO_FILES: &[(&str, &str)] = &[];

const SYSTEM_FILES: &[(&str, &str)] = &[
    (
        "/etc/apt/",
        "the APT sources, keyrings and configuration read (under --root)",
    ),
    // Relative to --root: the absolute path of dpkg's database in the
    // binary is what lintian's uses-dpkg-database-directly flags.
    (
        "var/lib/dpkg/status",
        "the installed packages, under --root (/ by default)",
    ),
];

const STATE_FILES: &[(&str, &str)] = &[
    ("/etc/apt/", "the APT sources, keyrings and configuration (under --root)"),
    ("/var/lib/ferry/", "one directory per migration: its journal (state.json), profile and plan; mode 0700"),
    ("/var/lib/ferry/lock", "held while a migration runs"),
    ("/var/backups/ferry/", "each migration's offline backup: /etc/apt, the .debs, apt's lists; mode 0700, kept on purge"),
    ("/var/log/ferry/", "each migration's event log, one JSON object per line"),
];

const RELEASE_FILES: &[(&str, &str)] = &[
    (
        "/etc/ferry/release.toml",
        "where the meta-release index is and the keyring that signs the bundles",
    ),
    ("/etc/os-release", "the release this system runs"),
    (
        "/var/cache/ferry/release/",
        "the downloaded bundle of an upgrade, resumed on a second attempt",
    ),
];

fn written(page: &str) -> Written {
    let w = |exit, files, examples| Written {
        exit,
        files,
        examples,
    };
    match page {
        "ferry" => w(
            "",
            STATE_FILES,
            &[
                ("See what a migration profile would change, without root:", "ferry plan acme.toml"),
                ("Carry it out, journaled, rolled back on failure:", "sudo ferry run acme.toml --yes"),
                ("Compare two versions as dpkg does:", "ferry version compare 1.0~rc1 lt 1.0 && echo older"),
            ],
        ),
        "ferry-version" | "ferry-version-compare" => w(
            "0 when the relation holds, 1 when not, 2 for a version or operator dpkg refuses (as dpkg --compare-versions).",
            NO_FILES,
            &[
                ("In a shell condition:", "ferry version compare \"$installed\" lt 2.36-9 && echo upgrade"),
                ("The answer as JSON, with dpkg's warnings:", "ferry --json version compare 1:0.9 gt 2.0"),
            ],
        ),
        "ferry-sources" | "ferry-sources-show" => w(
            "",
            SYSTEM_FILES,
            &[
                ("Every APT source entry of this system:", "ferry sources show"),
                ("Of a system mounted elsewhere, as JSON:", "ferry --root /mnt --json sources show"),
            ],
        ),
        "ferry-check" => w(
            "1 when some package is not installable.",
            SYSTEM_FILES,
            &[
                ("Which packages of a mirror cannot be installed, and why:", "ferry check --explain --failures dists/sid/main/binary-amd64/Packages.xz"),
                ("dose-distcheck's report:", "ferry check --format dose-yaml --failures Packages.xz"),
                ("Which installed packages these repositories alone could not keep:", "ferry check --installed /var/lib/apt/lists/*_Packages"),
            ],
        ),
        "ferry-plan" => w(
            "3 when a check blocks the migration; nothing is changed either way.",
            STATE_FILES,
            &[
                ("What a profile would change, read-only:", "ferry plan acme.toml"),
                ("Each package a finding counts:", "ferry plan --verbose acme.toml"),
                ("Save the plan for `ferry run --plan`:", "ferry plan acme.toml --save acme.plan"),
            ],
        ),
        "ferry-run" => w(
            "3 when blocked (nothing changed); 4 failed and rolled back; 5 failed and the rollback is incomplete (manual action listed).",
            STATE_FILES,
            &[
                ("Carry out a profile, asking first:", "sudo ferry run acme.toml"),
                ("Carry out a saved plan without asking:", "sudo ferry run --plan acme.plan --yes"),
                ("Continue an interrupted migration:", "sudo ferry run --resume --yes"),
            ],
        ),
        "ferry-status" => w(
            "",
            STATE_FILES,
            &[("Where the current or last migration stands:", "ferry status")],
        ),
        "ferry-history" => w(
            "",
            STATE_FILES,
            &[("Every migration of this system, as JSON:", "ferry history --json")],
        ),
        "ferry-rollback" => w(
            "5 when the rollback is incomplete (the differences are listed).",
            STATE_FILES,
            &[
                ("Undo the latest migration, asking first:", "sudo ferry rollback"),
                ("Undo a given one without asking:", "sudo ferry rollback acme-20261202T081500Z --yes"),
            ],
        ),
        "ferry-release" | "ferry-release-check" => w(
            "ferry release check: 0 when a newer release is offered, 1 when up to date or the publisher stopped the upgrade.",
            RELEASE_FILES,
            &[
                ("Is a newer release offered?", "ferry release check"),
                ("From another index:", "ferry release check --meta-release https://releases.example.org/meta-release"),
            ],
        ),
        "ferry-release-fetch" => w(
            "1 when no newer release is offered; 2 when the bundle is refused (signature, checksum, contents).",
            RELEASE_FILES,
            &[("Download, verify and keep the offered bundle:", "ferry release fetch --dir /var/tmp/next")],
        ),
        "ferry-release-upgrade" => w(
            "3 when blocked (nothing changed); 4 failed and rolled back; 5 failed and the rollback is incomplete.",
            RELEASE_FILES,
            &[
                ("What the upgrade would do, changing nothing:", "ferry release upgrade --dry-run"),
                ("Upgrade without asking:", "sudo ferry release upgrade --yes"),
            ],
        ),
        "ferry-release-bundle" => w(
            "2 when the directory is not a valid bundle or signing fails.",
            NO_FILES,
            &[(
                "Pack and sign a bundle with a key of a GnuPG home:",
                "ferry release bundle trixie/ --gnupghome ~/.gnupg-release -o trixie.tar.xz",
            )],
        ),
        "ferry-archive" | "ferry-archive-excuses" => w(
            "ferry archive excuses: 1 when some source is blocked.",
            NO_FILES,
            &[
                ("Which sources of sid may migrate to forky, and why not:", "ferry archive excuses --from dists/sid --to dists/forky --arch amd64"),
                ("britney's excuses.yaml:", "ferry archive excuses --from dists/sid --to dists/forky --yaml > excuses.yaml"),
            ],
        ),
        "ferry-archive-nbs" => w(
            "1 when some binary is not built from source.",
            NO_FILES,
            &[("Binaries their source no longer builds, and the sources to rebuild:", "ferry archive nbs dists/sid --arch amd64")],
        ),
        "ferry-archive-coverage" => w(
            "1 when some binary of the old suite has no counterpart.",
            NO_FILES,
            &[("Does the new repository cover the old one?", "ferry archive coverage --from old/dists/stable --to new/dists/stable --map renames.txt")],
        ),
        "ferry-image" | "ferry-image-inspect" => w(
            "",
            NO_FILES,
            &[
                ("The partitions and filesystems of a compressed image:", "ferry image inspect disk.img.xz"),
                ("As an sfdisk script:", "ferry image inspect disk.img --format sfdisk"),
            ],
        ),
        "ferry-image-flash" => w(
            "2 when the target is untouched; 1 when it was partly written (the bytes written are said).",
            NO_FILES,
            &[("Write an image with its block map:", "sudo ferry image flash disk.img.xz /dev/sdb --bmap disk.img.bmap")],
        ),
        "ferry-image-layout" => w(
            "",
            NO_FILES,
            &[("Lay an image into the swap partition, growing its root:", "sudo ferry image layout disk.img --into /dev/sda:3 --grow 2 --apply")],
        ),
        "ferry-takeover" | "ferry-takeover-plan" => w(
            "3 when a check blocks the takeover.",
            &[("/etc/ferry/takeover.toml", "the takeover configuration (see docs/takeover.md)")],
            &[("The pre-flight of replacing this OS with an image:", "ferry takeover plan --image disk.img.xz")],
        ),
        "ferry-takeover-run" => w(
            "2 for bad input or without --yes and a terminal; 3 when the pre-flight blocks; 1 when a step failed (before the flash the old OS is unchanged). Strategy ram does not return when it succeeds: the machine reboots into the new OS.",
            &[
                ("/var/lib/ferry/takeover/journal.json", "the run's journal on the old OS"),
                ("/run/ferry-takeover", "the tmpfs stage 2 runs in (strategy ram)"),
                ("/boot/grub/custom.cfg", "the new OS's one-shot grub entry (strategy flasher)"),
                ("/etc/ferry/takeover-deadline", "in the new OS (strategy flasher): reboots into the old OS unless confirmed within [confirm] deadline_seconds of its boot, run by ferry-takeover-deadline.service"),
            ],
            &[(
                "Replace this OS with an image, as the config says:",
                "sudo ferry takeover run --image /srv/os.img.gz --config /etc/ferry/takeover.toml --yes",
            )],
        ),
        "ferry-takeover-status" => w(
            "0 when the takeover completed; 1 when it did not, or when none is on record.",
            &[
                ("/var/lib/ferry/takeover/journal.json", "the record on the old OS"),
                ("ferry-takeover/journal.json", "the record in the new OS's data partition"),
                ("/var/lib/ferry/takeover/deadline-passed", "on the old OS: the new OS's deadline rebooted it unconfirmed (verdict fell-back)"),
            ],
            &[("What became of the takeover, with each step's time:", "ferry takeover status --json")],
        ),
        "ferry-takeover-confirm" => w(
            "0 when confirmed (now or before); 1 when no flasher takeover waits for it or confirming failed.",
            &[("ferry-takeover/flasher.json", "the record in the new OS's data partition")],
            &[("On the new OS, once it is up and reachable:", "sudo ferry takeover confirm")],
        ),
        "ferry-fleet" | "ferry-fleet-serve" => w(
            "1 when the server cannot start or stops; 2 for a bad flag, an unreadable or empty token file, an unusable certificate, key or CA file, an address in use, or a database of a newer schema.",
            &[
                ("FILE (--db)", "the SQLite database, migrated to the current schema on start (see docs/fleet.md)"),
                ("FILE (--tls-cert, --tls-key, --client-ca)", "PEM: the server's certificate chain and key, and the CA client certificates must chain to"),
            ],
            &[
                (
                    "Serve the fleet API on port 8470:",
                    "ferry fleet serve --listen 0.0.0.0:8470 --db /var/lib/ferry/fleet.db --operator-token-file /etc/ferry/operator.token",
                ),
                (
                    "Serve it over HTTPS, every client with a certificate the client CA signed:",
                    "ferry fleet serve --listen 0.0.0.0:8470 --db /var/lib/ferry/fleet.db --operator-token-file /etc/ferry/operator.token --tls-cert /etc/ferry/fleet.pem --tls-key /etc/ferry/fleet.key --client-ca /etc/ferry/clients-ca.pem",
                ),
                (
                    "The same, hinting devices through an MQTT broker to poll as soon as they get a command:",
                    "ferry fleet serve --listen 0.0.0.0:8470 --db /var/lib/ferry/fleet.db --operator-token-file /etc/ferry/operator.token --mqtt mqtt://broker:1883",
                ),
            ],
        ),
        "ferry-fleet-logs" => w(
            "1 when the server could not be reached; 2 when it refused (an unknown device, or no log of that command).",
            NO_FILES,
            &[
                (
                    "The run logs a device uploaded:",
                    "ferry fleet logs dev-3f1c --server https://fleet:8470 --operator-token-file operator.token --ca fleet-ca.pem",
                ),
                (
                    "The output of its run of one command:",
                    "ferry fleet logs dev-3f1c cmd-9e8d --server https://fleet:8470 --operator-token-file operator.token --ca fleet-ca.pem",
                ),
            ],
        ),
        "ferry-fleet-enrol" => w(
            "1 when the server refused or could not be reached; 2 when the state dir is already enrolled.",
            &[("/var/lib/ferry/agent/identity.json", "the device id and token (mode 0600)")],
            &[(
                "Enrol this device:",
                "sudo ferry fleet enrol --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-label" => w(
            "1 when the server could not be reached; 2 when it refused (an unknown device, a bad label).",
            NO_FILES,
            &[(
                "Put a device in the group canary:",
                "ferry fleet label dev-3f1c --label canary --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-status" => w(
            "1 when the server could not be reached; 2 when it refused.",
            NO_FILES,
            &[(
                "Every rollout's state, wave and counts:",
                "ferry fleet status --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-rollout-status" => w(
            "1 when the server could not be reached; 2 when it refused (an unknown rollout).",
            NO_FILES,
            &[(
                "One rollout's waves, gates and devices:",
                "ferry fleet rollout status ro-1a2b --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-rollout" | "ferry-fleet-rollout-create" => w(
            "1 when the server could not be reached; 2 when it refused the rollout (the message names what is wrong) or a file cannot be read.",
            &[("FILE (--signature)", "the artifact's armored detached OpenPGP signature; agents verify it against their --keyring")],
            &[(
                "A profile to group lab: 2 devices, then 50% and all, each wave gated at 95%:",
                "ferry fleet rollout create --group lab --artifact trixie.toml --signature trixie.toml.asc --canary 2 --wave 50 --gate-success 95 --abort-failures 5 --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-rollout-pause" => w(
            "1 when the server could not be reached; 2 when it refused (an unknown rollout, or one whose state does not allow it).",
            NO_FILES,
            &[(
                "Hold a rollout where it is; devices running keep running:",
                "ferry fleet rollout pause ro-1a2b --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-rollout-resume" => w(
            "1 when the server could not be reached; 2 when it refused (an unknown rollout, or one whose state does not allow it).",
            NO_FILES,
            &[(
                "Resume a rollout a gate paused, accepting that wave:",
                "ferry fleet rollout resume ro-1a2b --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-fleet-rollout-abort" => w(
            "1 when the server could not be reached; 2 when it refused (an unknown rollout, or one whose state does not allow it).",
            NO_FILES,
            &[(
                "Stop a rollout for good; devices not yet given the command stay untouched:",
                "ferry fleet rollout abort ro-1a2b --server http://fleet:8470 --operator-token-file operator.token",
            )],
        ),
        "ferry-agent" => w(
            "With --once: 0 when the cycle went through; 1 when the server could not be reached (the events stay buffered); 2 when the state dir is not enrolled.",
            &[
                ("/var/lib/ferry/agent/", "identity.json (0600), state.json and outbox.jsonl, the events not yet acknowledged; commands.json, every command taken (a replay is refused); logs/CMD.log, a run's output (its last 1 MiB), uploaded after the result"),
                ("/etc/default/ferry-agent", "FERRY_AGENT_ARGS for ferry-agent.service, which runs the agent once the device is enrolled"),
                ("/var/log/ferry/events.jsonl", "the event log the agent delivers"),
                ("FILE (--keyring)", "the OpenPGP keyring rollout artifacts must be signed with"),
            ],
            &[
                ("Deliver this device's events once, then exit:", "sudo ferry agent --once --keyring /etc/ferry/fleet.gpg"),
                ("Run forever, polling at once when the broker relays a hint (at most every 5 s):", "sudo ferry agent --keyring /etc/ferry/fleet.gpg --mqtt mqtt://broker:1883"),
            ],
        ),
        _ => w("", NO_FILES, &[]),
    }
}

/// Text for a roff page body: backslashes and hyphens escaped, and a line
/// that would start with a control character kept as text.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// EXIT STATUS, FILES, EXAMPLES and SEE ALSO of `page` as roff.
pub fn sections(page: &str) -> String {
    let written = written(page);
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in [
        ("0", "done, or the answer is yes"),
        ("1", "failed, or the answer is no"),
        ("2", "bad usage or bad input; nothing was changed (with --json, the error is a JSON object on stdout)"),
        ("3", "blocked by a check; nothing was changed"),
        ("4", "failed and rolled back"),
        ("5", "failed and the rollback is incomplete; the manual action is listed"),
    ] {
        out.push_str(&format!(".TP\n.B {code}\n{}\n", roff(meaning)));
    }
    if !written.exit.is_empty() {
        out.push_str(&format!(".PP\n{}\n", roff(written.exit)));
    }
    out.push_str(".SH FILES\n");
    let files = if written.files.is_empty() {
        &[("/usr/share/doc/ferry/", "ferry's documentation")][..]
    } else {
        written.files
    };
    for (path, what) in files {
        out.push_str(&format!(".TP\n.I {}\n{}\n", roff(path), roff(what)));
    }
    out.push_str(".SH EXAMPLES\n");
    let words = page.replace('-', " ");
    let fallback = [("Its options:", format!("{words} --help"))];
    let examples: Vec<(&str, String)> = if written.examples.is_empty() {
        fallback.to_vec()
    } else {
        written
            .examples
            .iter()
            .map(|(what, line)| (*what, line.to_string()))
            .collect()
    };
    for (what, line) in examples {
        out.push_str(&format!(
            ".PP\n{}\n.PP\n.RS 4\n.nf\n$ {}\n.fi\n.RE\n",
            roff(what),
            roff(&line)
        ));
    }
    out.push_str(
        ".SH \"SEE ALSO\"\n.BR dpkg (1),\n.BR apt\\-get (8),\n.BR sources.list (5);\n\
         the documentation in\n.I /usr/share/doc/ferry/\n\
         (profile.md, release\\-upgrade.md, archive.md, json.md, exit\\-codes.md).\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_what_roff_would_read_as_markup() {
        assert_eq!(roff("--yes"), "\\-\\-yes");
        assert_eq!(roff("a\\b"), "a\\eb");
        assert_eq!(roff(".hidden"), "\\&.hidden");
    }

    #[test]
    fn a_page_with_nothing_written_still_has_an_example() {
        let text = sections("ferry-takeover-someday");
        assert!(
            text.contains("$ ferry takeover someday \\-\\-help"),
            "{text}"
        );
        assert!(
            text.contains(".SH FILES\n.TP\n.I /usr/share/doc/ferry/"),
            "{text}"
        );
    }
}
