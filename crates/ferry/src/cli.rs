//! The command line: every subcommand and flag, as clap definitions. Man
//! pages and completions are generated from these same definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::EXIT_CODES_HELP;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Move Debian-family machines to another repository, release or OS, safely",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Work on the system mounted at DIR (a chroot, an image) instead of /;
    /// DIR must hold a Debian system (etc/apt/ and var/lib/dpkg/status), or
    /// the command stops with exit 2
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Show no progress (errors and the result still print)
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Show every item a summary counts (e.g. each package of a plan's finding)
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compare Debian versions exactly as dpkg does
    #[command(subcommand)]
    Version(VersionCommand),
    /// Show this system's APT sources
    #[command(subcommand)]
    Sources(SourcesCommand),
    /// Which packages cannot be installed, as dose-distcheck answers it (exit 1 when some)
    Check(CheckArgs),
    /// Show what a migration profile would change, read-only, without root (exit 3 when blocked)
    Plan(PlanArgs),
    /// Carry out a migration as root: backup, sources, packages, verify; rolls back on failure
    Run(RunArgs),
    /// Where the current or last migration stands, step by step
    Status,
    /// Every migration of this system, newest last
    History,
    /// Restore the system from a migration's backup, offline, and prove it (as root)
    Rollback(RollbackArgs),
    /// Release upgrades: is a newer release offered, fetch its signed bundle, build one
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// For archive maintainers: migration excuses, binaries not built from source, organisation coverage
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Disk images: read an image's partition table and filesystems
    #[command(subcommand)]
    Image(ImageCommand),
    /// OS takeover: replace this machine's OS with a disk image, safely
    #[command(subcommand)]
    Takeover(TakeoverCommand),
    /// The fleet: run the server, enrol devices, list devices and their events, roll out signed artifacts
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Run this device's fleet agent: poll the server and deliver the event log's events exactly once
    Agent(AgentArgs),
    /// Write man pages or shell completions from these definitions (for packagers)
    #[command(subcommand, hide = true)]
    Generate(GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Serve the fleet's JSON API (/api/v1/…) over HTTP with its SQLite store
    Serve {
        /// The address to listen on (port 0 picks a free one; the line
        /// `listening on http://ADDR` says which)
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
        listen: std::net::SocketAddr,
        /// The SQLite database; created and migrated to the current schema
        #[arg(long, value_name = "FILE")]
        db: PathBuf,
        /// A file holding the operator token (enrols devices, reads everything)
        #[arg(long, value_name = "FILE")]
        operator_token_file: PathBuf,
        /// Seconds between a device's polls, as the server tells the agents
        #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        interval: u64,
        /// Serve HTTPS with this certificate chain (PEM, leaf first)
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM)
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Mutual TLS: every client must present a certificate this CA signed,
        /// and a device's token counts only with the certificate naming that
        /// device (subject alternative name DNS:DEVICE-ID)
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        client_ca: Option<PathBuf>,
        /// An MQTT broker (mqtt://HOST:PORT) to publish "poll now" hints
        /// through when devices get a command; without it devices learn of
        /// commands at their next poll
        #[arg(long, value_name = "URL")]
        mqtt: Option<ferry_fleet::BrokerUrl>,
    },
    /// Enrol this device with a server: keeps its id and token in --state (0600)
    Enrol {
        /// The server's URL, e.g. http://fleet.example:8470
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
        /// The agent's state directory
        #[arg(long, value_name = "DIR", default_value = "/var/lib/ferry/agent")]
        state: PathBuf,
        /// A group to join (repeatable); rollouts go to groups
        #[arg(long = "label", value_name = "LABEL")]
        labels: Vec<String>,
    },
    /// Add a device to groups (labels)
    Label {
        /// The device id (`ferry fleet devices` lists them)
        device: String,
        /// A group to join (repeatable)
        #[arg(long = "label", value_name = "LABEL", required = true)]
        labels: Vec<String>,
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
    },
    /// Rollouts: a signed artifact to a group in waves, gated and halted on failures
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// An overview: devices, and every rollout's state and counts
    Status {
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
    },
    /// Every enrolled device: last seen, OS, events delivered
    Devices {
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
    },
    /// A device's events as the server stored them, in seq order
    Events {
        /// The device id (`ferry fleet devices` lists them)
        device: String,
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
    },
    /// The run logs a device uploaded (the output of each command it ran), or one of them
    Logs {
        /// The device id (`ferry fleet devices` lists them)
        device: String,
        /// A command id: print that run's output (without it: list the logs)
        command: Option<String>,
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
    },
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout: the canary is assigned at once, later waves as gates pass
    Create(Box<RolloutCreateArgs>),
    /// A rollout's waves, counts and devices (every rollout without ID)
    Status {
        /// The rollout id
        id: Option<String>,
        #[arg(long, value_name = "URL")]
        server: String,
        #[command(flatten)]
        operator: OperatorToken,
    },
    /// Stop handing out commands (devices already running finish)
    Pause(RolloutIdArgs),
    /// Go on after a pause; the wave that halted it counts as accepted
    Resume(RolloutIdArgs),
    /// Stop for good; devices not yet assigned stay untouched
    Abort(RolloutIdArgs),
}

#[derive(Debug, Args)]
pub struct RolloutIdArgs {
    /// The rollout id
    pub id: String,
    #[arg(long, value_name = "URL")]
    pub server: String,
    #[command(flatten)]
    pub operator: OperatorToken,
}

#[derive(Debug, Args)]
pub struct RolloutCreateArgs {
    /// The group (label) the rollout goes to
    #[arg(long, value_name = "LABEL")]
    pub group: String,
    /// The artifact to upload: a migration profile or a script (see --kind)
    #[arg(long, value_name = "FILE")]
    pub artifact: PathBuf,
    /// Its armored detached OpenPGP signature (`gpg --armor --detach-sign`)
    #[arg(long, value_name = "FILE")]
    pub signature: PathBuf,
    /// profile (run with `ferry run --yes`) or script (run with sh)
    #[arg(long, value_name = "KIND", default_value = "profile", value_parser = ["profile", "script"])]
    pub kind: String,
    /// A name for people (default: the artifact's file name)
    #[arg(long)]
    pub name: Option<String>,
    /// The first wave: a count (2) or a percentage (10%)
    #[arg(long, value_name = "N|P%", default_value = "1")]
    pub canary: String,
    /// A later wave as a cumulative percentage of the group (repeatable, ascending)
    #[arg(long = "wave", value_name = "PERCENT")]
    pub waves: Vec<f64>,
    /// Seconds a wave runs before the next may start
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub dwell: u64,
    /// A wave's gate: this percentage of its finished devices must succeed
    #[arg(long, value_name = "PERCENT", default_value_t = 100.0)]
    pub gate_success: f64,
    /// Finished devices a gate waits for (default: the whole wave)
    #[arg(long, value_name = "N")]
    pub gate_min: Option<u64>,
    /// Halt once this many devices failed
    #[arg(long, value_name = "N")]
    pub abort_failures: Option<u64>,
    /// Halt once this percentage of the finished failed (after --abort-min finished)
    #[arg(long, value_name = "PERCENT")]
    pub abort_percent: Option<f64>,
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub abort_min: u64,
    /// What a halt does: pause (default) or abort
    #[arg(long, value_name = "ACTION", default_value = "pause", value_parser = ["pause", "abort"])]
    pub on_failure: String,
    /// UTC hours in which devices may start, e.g. 2-5 (wraps past midnight: 22-4)
    #[arg(long, value_name = "H-H")]
    pub window: Option<String>,
    /// The OS a device must run afterwards (os-release ID), or it failed
    #[arg(long, value_name = "ID")]
    pub expect_os: Option<String>,
    /// The version a device must run afterwards (VERSION_ID), or it failed
    #[arg(long, value_name = "VERSION")]
    pub expect_version: Option<String>,
    /// Seconds a device's run may take before it is killed
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Seconds a command stays valid for a device
    #[arg(long, value_name = "SECS")]
    pub command_ttl: Option<u64>,
    #[arg(long, value_name = "URL")]
    pub server: String,
    #[command(flatten)]
    pub operator: OperatorToken,
}

#[derive(Debug, Clone, Args)]
pub struct OperatorToken {
    /// A file holding the operator token
    #[arg(long, value_name = "FILE")]
    pub operator_token_file: PathBuf,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
}

/// How a client reaches an HTTPS server: whom to trust, what to present.
#[derive(Debug, Clone, Args)]
pub struct ClientTlsArgs {
    /// Trust this CA (PEM) for the server's certificate instead of the public roots
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM) for a server with --client-ca
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM)
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The server's URL (default: the one the device enrolled with)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The agent's state directory (identity, outbox, progress)
    #[arg(long, value_name = "DIR", default_value = "/var/lib/ferry/agent")]
    pub state: PathBuf,
    /// The event log to deliver (default: var/log/ferry/events.jsonl under --root)
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// The OpenPGP keyring rollout artifacts must be signed with; without
    /// it every command is refused
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// One cycle (take events, poll, upload) and exit: 0 when all was delivered, 1 when the server could not be reached (events stay buffered)
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub tls: ClientTlsArgs,
    /// An MQTT broker (mqtt://HOST:PORT) to take "poll now" hints from:
    /// a hint makes the agent poll at once (at most once every 5 seconds)
    /// instead of waiting out the interval
    #[arg(long, value_name = "URL", conflicts_with = "once")]
    pub mqtt: Option<ferry_fleet::BrokerUrl>,
}

#[derive(Debug, Subcommand)]
pub enum VersionCommand {
    /// Exit 0 when `A OP B` holds and 1 when not, like `dpkg --compare-versions`
    Compare {
        /// The first version (an empty one is no version, earlier than any)
        a: String,
        /// lt, le, eq, ne, ge, gt (or << <= = >= >>); lt-nl, le-nl, ge-nl,
        /// gt-nl (no version is later than any); < and > are dpkg's
        /// obsolete <= and >= (accepted with a warning)
        op: String,
        /// The second version
        b: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourcesCommand {
    /// List every APT source entry of the system, as a table or JSON
    Show,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write one man page per visible command (ferry.1, ferry-sources.1, …) into DIR
    Man {
        /// The directory to write the pages into; created when missing
        dir: PathBuf,
    },
    /// Print the completion script for SHELL, or write bash, zsh and fish scripts into --dir
    Completions {
        /// The shell to print a script for
        #[arg(value_enum, required_unless_present = "dir")]
        shell: Option<clap_complete::Shell>,
        /// Write ferry.bash, _ferry and ferry.fish into DIR instead
        #[arg(long, value_name = "DIR", conflicts_with = "shell")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The migration profile (TOML; see docs/profile.md)
    pub profile: PathBuf,
    /// Also write the plan to FILE for `ferry run --plan FILE` (not when it is blocked)
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The migration profile (TOML; see docs/profile.md); not with --resume or --plan
    #[arg(
        required_unless_present_any = ["resume", "plan"],
        conflicts_with_all = ["resume", "plan"]
    )]
    pub profile: Option<PathBuf>,
    /// Do not ask for confirmation (needed without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Continue the migration that was interrupted, from its journal
    #[arg(long)]
    pub resume: bool,
    /// Carry out the plan `ferry plan --save FILE` wrote, as it is, without
    /// planning again; refused when the system changed since
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub plan: Option<PathBuf>,
    /// When a step fails, leave the system as it is instead of rolling back
    #[arg(long)]
    pub no_rollback: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The migration to undo (default: the latest one with a backup)
    pub id: Option<String>,
    /// Do not ask for confirmation (needed without a terminal), as `ferry run`
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// dose-distcheck's YAML report
    DoseYaml,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Packages files (any compression apt uses)
    pub files: Vec<PathBuf>,
    /// The native architecture (default: dpkg --print-architecture)
    #[arg(long)]
    pub arch: Option<String>,
    /// Foreign architectures whose packages count too (repeat, or separate by commas)
    #[arg(long = "foreign-arch", value_name = "ARCH", value_delimiter = ',')]
    pub foreign_arch: Vec<String>,
    /// Report only the broken packages
    #[arg(long)]
    pub failures: bool,
    /// Say why each broken package is broken
    #[arg(long)]
    pub explain: bool,
    /// Output format other than text or --json
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<CheckFormat>,
    /// A dpkg status file whose installed packages join the check (their
    /// architectures count as foreign ones)
    #[arg(long, value_name = "FILE")]
    pub status: Option<PathBuf>,
    /// Check only the installed packages (of --status, or of --root's dpkg status):
    /// which would have no installable version in the given Packages files alone
    /// (an installed copy counts only where the files offer that version)
    #[arg(long)]
    pub installed: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Say whether a newer supported release is offered: exit 0 with the offer, 1 when up to date
    Check(ReleaseArgs),
    /// Download, check and unpack the offered release's bundle and show it; the system is not changed
    Fetch {
        #[command(flatten)]
        release: ReleaseArgs,
        /// Keep the download and the unpacked bundle in DIR (resumes a partial download there)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Upgrade to the offered release (as root): plan, back up, install the bundle's sources,
    /// upgrade ferry first, remove the demoted packages, full upgrade, verify
    Upgrade(UpgradeArgs),
    /// Pack and sign a bundle from DIR (for publishers); prints the index fields
    #[command(group = clap::ArgGroup::new("signer").required(true).multiple(true).args(["key", "gnupghome"]))]
    Bundle {
        /// The directory: sources.list and/or *.sources, demoted.cfg, optionally profile.toml
        dir: PathBuf,
        /// The signing key (a gpg key id or fingerprint); --key, --gnupghome or both
        #[arg(long, value_name = "KEYID")]
        key: Option<String>,
        /// The GnuPG home holding the signing key (its default key signs without --key)
        #[arg(long, value_name = "DIR")]
        gnupghome: Option<PathBuf>,
        /// The bundle to write: .tar, .tar.gz, .tar.xz or .tar.zst (the signature goes to OUT.sig)
        #[arg(long, short = 'o', value_name = "OUT")]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub release: ReleaseArgs,
    /// Do not ask for confirmation (needed without a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the plan (sources, packages, sizes, checks) and change nothing; exit 3 when blocked
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// When a step fails, leave the system as it is instead of rolling back
    #[arg(long)]
    pub no_rollback: bool,
}

/// Where the releases are listed and who signs them (default: /etc/ferry/release.toml).
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The meta-release index (http, https, file URL or a path)
    #[arg(long, value_name = "URL")]
    pub meta_release: Option<String>,
    /// The keyring that signs the bundles, a path on this machine
    #[arg(long, value_name = "PATH")]
    pub keyring: Option<PathBuf>,
    /// Pick this later release (its Dist or Name) instead of the next supported one
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Which sources of FROM may migrate to TO without making anything there
    /// uninstallable, and why not (britney's excuses; exit 1 when some are blocked)
    Excuses {
        /// The proposed suite's directory (a mirror's dists/SUITE/)
        #[arg(long, value_name = "SRC_DIR")]
        from: PathBuf,
        /// The target suite's directory
        #[arg(long, value_name = "DST_DIR")]
        to: PathBuf,
        /// Only these architectures (repeat, or separate by commas)
        #[arg(long, value_delimiter = ',')]
        arch: Vec<String>,
        /// A britney hints file: block, unblock, force, force-hint, remove, easy,
        /// age-days, urgent, ignore-rc-bugs
        #[arg(long, value_name = "FILE")]
        hints: Option<PathBuf>,
        #[command(flatten)]
        policies: PolicyArgs,
        /// Print britney's excuses.yaml layout instead of text or --json
        #[arg(long, conflicts_with = "json")]
        yaml: bool,
        /// Write the target after the accepted migrations into DIR, as a suite
        /// (main/binary-ARCH/Packages, main/source/Sources)
        #[arg(long, value_name = "DIR")]
        write_result: Option<PathBuf>,
    },
    /// Binaries no longer built by their source, what still needs each, and the
    /// sources to rebuild (exit 1 when some)
    Nbs {
        /// The suite: a mirror's dists/SUITE/ directory (COMPONENT/binary-ARCH/Packages*,
        /// COMPONENT/source/Sources*)
        suite: PathBuf,
        /// Only these architectures (repeat, or separate by commas)
        #[arg(long, value_delimiter = ',')]
        arch: Vec<String>,
    },
    /// Whether every binary of OLD has an installable counterpart in NEW at an equal
    /// or newer version (exit 1 when gaps)
    Coverage {
        /// The old repository's suite directory
        #[arg(long, value_name = "OLD_DIR")]
        from: PathBuf,
        /// The new repository's suite directory
        #[arg(long, value_name = "NEW_DIR")]
        to: PathBuf,
        /// Renamed packages: `old-name new-name` per line, `#` comments
        #[arg(long, value_name = "FILE")]
        map: Option<PathBuf>,
        /// Only these architectures (repeat, or separate by commas)
        #[arg(long, value_delimiter = ',')]
        arch: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// The partition table (MBR or GPT) and the filesystem in each partition
    /// of a plain or compressed image (gz, xz, zst, bz2, found by content),
    /// read in one pass: IMG may be a pipe (`-` reads standard input)
    Inspect {
        /// The image file, or `-` for standard input
        #[arg(value_name = "IMG")]
        image: PathBuf,
        /// Print the table as an sfdisk script (as `sfdisk --dump` prints it)
        #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "json")]
        format: Option<ImageFormat>,
    },
    /// Write an image to a device or file: streamed (IMG may be compressed or
    /// a pipe), only the blocks that hold data, every one verified, fsynced
    /// before done. Exit 2 when the target is untouched, 1 when partly written
    Flash(FlashArgs),
    /// Lay an image's partitions into a disk: into the space of one of its
    /// partitions (DISK:N, e.g. the swap) or the whole DISK, aligned, with
    /// --grow P taking the trailing space; prints the new table, and writes
    /// it with sfdisk only with --apply, leaving every other partition as it is
    Layout(LayoutArgs),
}

#[derive(Debug, Subcommand)]
pub enum TakeoverCommand {
    /// Read-only pre-flight of a takeover (CPU, firmware, root disk, RAM,
    /// tools, watchdog against the image and the config), without root;
    /// with --save, writes the stage-2 plan. Exit 3 when blocked
    Plan(TakeoverPlanArgs),
    /// Replace this machine's OS with the image, as root: stage 1 checks,
    /// collects and stages in RAM, then ferry becomes PID 1 (stage 2),
    /// flashes, carries network, identity and backup over, and reboots.
    /// Any failure before the first write leaves the old OS untouched
    Run(TakeoverRunArgs),
    /// What became of the last takeover (read on the new OS, or on the old
    /// OS when it came back) and how long each step took. Exit 0 when it
    /// completed, 1 when not or when no takeover is on record
    Status,
    /// On the new OS after a flasher takeover: say it runs, which makes its
    /// boot entry the default (until then the next boot is the old OS's)
    Confirm,
    /// Stage 2's worker, started by ferry as PID 1 (not for people)
    #[command(hide = true)]
    Stage2,
    /// Stage 2's PID 1 (not for people)
    #[command(name = "stage2-init", hide = true)]
    Stage2Init,
}

#[derive(Debug, Args)]
pub struct TakeoverRunArgs {
    /// The disk image that replaces this OS (plain or compressed)
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// The takeover config (TOML; see docs/takeover.md); defaults when absent
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// Inject a stage-2 fault (stage2-hang, stage2-delay, stage2-fail), for
    /// the VM tests
    #[arg(long, value_name = "FAULT", hide = true)]
    pub inject_fault: Option<ferry_takeover::Fault>,
}

#[derive(Debug, Args)]
pub struct TakeoverPlanArgs {
    /// The disk image that replaces this OS (plain or compressed)
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// The takeover config (TOML; see docs/takeover.md); defaults when absent
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the stage-2 plan to FILE (refused, exit 3, when blocked)
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// The image whose partition layout is copied
    #[arg(value_name = "IMG")]
    pub image: PathBuf,
    /// The disk (device or disk image file): `DISK:N` (or a partition's
    /// device, /dev/sda5) for the space of partition N, `DISK:free` for the
    /// largest free space, `DISK` alone for the whole disk
    #[arg(long, value_name = "DISK[:N|:free]")]
    pub into: String,
    /// The image's partition that takes the region's trailing space
    #[arg(long, value_name = "P")]
    pub grow: Option<u32>,
    /// Write the new table to DISK (with sfdisk) and read it back
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// The image file, or `-` for standard input
    #[arg(value_name = "IMG")]
    pub image: PathBuf,
    /// The block device or file to write the whole image to
    #[arg(value_name = "TARGET", required_unless_present = "partition")]
    pub target: Option<PathBuf>,
    /// Write partition N of the image into TARGET instead of the whole
    /// image (repeat for several partitions); one pass over the stream
    #[arg(long, value_name = "N:TARGET", conflicts_with_all = ["target", "bmap"], value_parser = parse_partition_route)]
    pub partition: Vec<(u32, PathBuf)>,
    /// A block map (bmaptool's format 1.x or 2.0): write only its ranges and
    /// check each against its checksum
    #[arg(long, value_name = "FILE")]
    pub bmap: Option<PathBuf>,
    /// Re-read what was written past the page cache and compare
    #[arg(long)]
    pub read_back: bool,
    /// Also zero (or discard) what the image does not map, so a used device
    /// ends as an exact copy
    #[arg(long)]
    pub exact: bool,
}

/// Output formats of `image inspect` besides text and `--json`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ImageFormat {
    /// An sfdisk script that sfdisk can read back
    Sfdisk,
}

/// `N:TARGET` of `image flash --partition`.
fn parse_partition_route(text: &str) -> Result<(u32, PathBuf), String> {
    let (number, target) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not N:TARGET (e.g. 2:/dev/sdb2)"))?;
    let number: u32 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{number}` is not a partition number"))?;
    if target.is_empty() {
        return Err(format!("`{text}` names no target"));
    }
    Ok((number, PathBuf::from(target)))
}

/// britney's age and RC-bug policies for `archive excuses`: each is off
/// unless its files are given.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// britney's Dates file (`SOURCE VERSION DAY` a line): turns on the age policy
    #[arg(long, value_name = "FILE")]
    pub dates: Option<PathBuf>,
    /// britney's Urgency file (`SOURCE VERSION URGENCY` a line; the most urgent upload since the
    /// target's version counts)
    #[arg(long, value_name = "FILE", requires = "dates")]
    pub urgencies: Option<PathBuf>,
    /// Today for the age policy: britney's day number (days since 1970-01-01, each beginning at
    /// 19:00 UTC) or a date YYYY-MM-DD (the day beginning at 19:00 UTC that date) [default: now]
    #[arg(long, value_name = "DAY|DATE", value_parser = parse_now, requires = "dates")]
    pub now: Option<i64>,
    /// The age an urgency requires, in days (repeat) [defaults: low=10 medium=5 high=2 critical=0
    /// emergency=0]
    #[arg(long = "min-days", value_name = "URGENCY=DAYS", value_parser = parse_min_days, requires = "dates")]
    pub min_days: Vec<(String, u32)>,
    /// The urgency of an upload without one, and the least a source new to the target gets
    /// [default: medium]
    #[arg(long, value_name = "URGENCY", requires = "dates")]
    pub default_urgency: Option<String>,
    /// The source suite's RC bugs (britney's BugsV or rc-bugs-SUITE: `PACKAGE BUG[,BUG…]` a line;
    /// PACKAGE a binary, a source or src:SOURCE): turns on the RC-bug policy
    #[arg(long, value_name = "FILE", requires = "bugs_to")]
    pub bugs_from: Option<PathBuf>,
    /// The target suite's RC bugs, in the same format
    #[arg(long, value_name = "FILE", requires = "bugs_from")]
    pub bugs_to: Option<PathBuf>,
}

fn parse_now(text: &str) -> Result<i64, String> {
    ferry_archive::parse_day(text)
}

fn parse_min_days(text: &str) -> Result<(String, u32), String> {
    let (urgency, days) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not URGENCY=DAYS (e.g. low=10)"))?;
    let days = days
        .parse()
        .map_err(|_| format!("`{days}` is not a number of days"))?;
    if urgency.is_empty() {
        return Err(format!("`{text}` names no urgency"));
    }
    Ok((urgency.to_string(), days))
}
