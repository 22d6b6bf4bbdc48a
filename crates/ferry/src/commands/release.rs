//! `ferry release check | fetch | upgrade | bundle`: whether the
//! meta-release index offers this system a newer release, getting and
//! verifying that release's signed bundle without changing the system,
//! upgrading to it (the bundle made into a migration, run by the migration
//! engine), and building a bundle for publishers. Deciding and verifying
//! live in `ferry_release`; this module wires flags and renders.
//!
//! Exit codes: `check` answers 0 (a newer release is offered) or 1 (up to
//! date, or the release is stopped by the publisher); a bad index, a bad
//! bundle or a refused signature is 2 and nothing is changed.

use std::fmt;
use std::path::Path;

use ferry_apt::PackageName;
use ferry_apt::SystemRoot;
use ferry_deb::os_release::OsRelease;
use ferry_fetch::Verified;
use ferry_release::{
    offer, Built, BundleRef, Config, MetaRelease, NewSources, Offer, ReleaseEntry,
};
use ferry_release::{BundleError, SignWith};
use ferry_release::{ConfigError, CONFIG_PATH};
use serde::Serialize;

use super::migrate::{self, PlanView};
use super::{require_privileges, system_root};
use crate::cli::{Global, ReleaseArgs, ReleaseCommand, UpgradeArgs};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::render::{self, Failure};

/// An index is a few kilobytes; this bounds what a hostile server can send.
const INDEX_LIMIT: u64 = 4 << 20;

pub fn run(command: ReleaseCommand, global: &Global) -> Result<Exit, Failure> {
    match command {
        ReleaseCommand::Check(args) => check(&args, global, &system_root(global)?),
        ReleaseCommand::Fetch { release, dir } => {
            fetch_bundle(&release, dir.as_deref(), global, &system_root(global)?)
        }
        ReleaseCommand::Upgrade(args) => {
            let root = system_root(global)?;
            if !args.dry_run {
                require_privileges("ferry release upgrade")?;
            }
            upgrade(&args, global, &root)
        }
        ReleaseCommand::Bundle {
            dir,
            key,
            gnupghome,
            output,
        } => build(&dir, &output, SignWith { key, gnupghome }, global),
    }
}

/// The index, the system's os-release and the configuration, read.
struct Context {
    config: Config,
    url: String,
    index: MetaRelease,
    os: OsRelease,
}

fn context(args: &ReleaseArgs, root: &SystemRoot) -> Result<Context, Failure> {
    let config = Config::read(root.path())
        .map_err(config_failure)?
        .with_overrides(args.meta_release.clone(), args.keyring.clone());
    let url = config.meta_release.clone().ok_or_else(|| {
        Failure::bad_input("no meta-release index is configured").hint(format!(
            "set `meta_release = \"URL\"` in {} under --root, or pass --meta-release URL",
            Path::new("/").join(CONFIG_PATH).display()
        ))
    })?;
    let body = ferry_fetch::fetch_bytes(&url, INDEX_LIMIT).map_err(|e| index_failure(&e, &url))?;
    let text = String::from_utf8(body).map_err(|e| {
        Failure::bad_input(format!(
            "the meta-release index is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
        .at(Path::new(&url), None, None)
    })?;
    let index = MetaRelease::parse(&text).map_err(|e| {
        Failure::bad_input(format!("bad meta-release index: {e}"))
            .at(Path::new(&url), e.line(), None)
            .expected("deb822 paragraphs with Dist, Version, Date and Supported")
    })?;
    let os = OsRelease::read(root.path())
        .map_err(|e| Failure::bad_input(format!("cannot read os-release: {e}")))?;
    Ok(Context {
        config,
        url,
        index,
        os,
    })
}

/// An index that is not there (no such file, 404, 410), is too large or
/// has a scheme ferry does not fetch is a wrong `--meta-release` or
/// configuration: exit 2. A network that fails on the way is exit 1.
fn index_failure(error: &ferry_fetch::FetchError, url: &str) -> Failure {
    use ferry_fetch::FetchError;
    let mut last = error;
    while let FetchError::GaveUp { last: inner, .. } = last {
        last = inner;
    }
    let what = format!("cannot fetch the meta-release index: {error}");
    let wrong_address = match last {
        FetchError::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
        ),
        FetchError::Status { status, .. } => matches!(status, 404 | 410),
        FetchError::Scheme { .. } | FetchError::TooLarge { .. } => true,
        _ => false,
    };
    let failure = if wrong_address {
        Failure::bad_input(what).hint(
            "check --meta-release or `meta_release` in the configuration; nothing was changed",
        )
    } else {
        Failure::failed(what).hint("check the network and try again; nothing was changed")
    };
    failure.at(Path::new(url), None, None)
}

fn config_failure(error: ConfigError) -> Failure {
    let failure = Failure::bad_input(error.to_string());
    match &error {
        ConfigError::Syntax {
            path, line, column, ..
        }
        | ConfigError::RelativeKeyring { path, line, column } => {
            failure.at(path, Some(*line), Some(*column))
        }
        ConfigError::Read { path, .. } => failure.at(path, None, None),
    }
}

fn decide<'a>(ctx: &'a Context, to: Option<&str>) -> Result<Offer<'a>, Failure> {
    offer(&ctx.index, &ctx.os, to).map_err(|e| {
        Failure::bad_input(e.to_string()).hint("see the releases the index lists with --json")
    })
}

fn describe(entry: &ReleaseEntry) -> String {
    match &entry.name {
        Some(name) => format!("{} ({name}, {})", entry.dist, entry.version),
        None => format!("{} ({})", entry.dist, entry.version),
    }
}

/// A release of the index as ferry shows it: its `Date` as ISO 8601 UTC.
#[derive(Debug, Serialize)]
pub struct ReleaseView<'a> {
    pub dist: &'a str,
    pub name: Option<&'a str>,
    pub version: &'a str,
    pub date: Option<String>,
    pub supported: bool,
    pub description: Option<&'a str>,
    pub release_file: Option<&'a str>,
    pub release_notes: Option<&'a str>,
    pub release_notes_html: Option<&'a str>,
    pub upgrade_tool: Option<&'a str>,
    pub upgrade_tool_signature: Option<&'a str>,
    pub upgrade_broken: Option<&'a str>,
    pub bundle: Option<&'a BundleRef>,
    /// The line of the index the release's paragraph starts on.
    pub line: usize,
    #[serde(skip)]
    entry: &'a ReleaseEntry,
}

impl<'a> From<&'a ReleaseEntry> for ReleaseView<'a> {
    fn from(e: &'a ReleaseEntry) -> Self {
        ReleaseView {
            dist: &e.dist,
            name: e.name.as_deref(),
            version: &e.version,
            // Before 1970 is no date a release index gives.
            date: u64::try_from(e.timestamp).ok().map(render::iso8601),
            supported: e.supported,
            description: e.description.as_deref(),
            release_file: e.release_file.as_deref(),
            release_notes: e.release_notes.as_deref(),
            release_notes_html: e.release_notes_html.as_deref(),
            upgrade_tool: e.upgrade_tool.as_deref(),
            upgrade_tool_signature: e.upgrade_tool_signature.as_deref(),
            upgrade_broken: e.upgrade_broken.as_deref(),
            bundle: e.bundle.as_ref(),
            line: e.line,
            entry: e,
        }
    }
}

impl fmt::Display for ReleaseView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self.entry))
    }
}

/// What this system's os-release says of its release.
#[derive(Debug, Serialize)]
pub struct OsReleaseView<'a> {
    pub pretty_name: Option<&'a str>,
    pub version_id: Option<&'a str>,
    pub version_codename: Option<&'a str>,
}

/// `ferry release check`'s answer: the release this system runs, the one
/// offered (if any), and why an offered one is stopped.
#[derive(Debug, Serialize)]
pub struct OfferOutput<'a> {
    pub index: &'a str,
    pub upgrade: bool,
    pub current: Option<ReleaseView<'a>>,
    pub os_release: OsReleaseView<'a>,
    pub target: Option<ReleaseView<'a>>,
    pub upgrade_broken: Option<&'a str>,
}

impl<'a> OfferOutput<'a> {
    fn new(index: &'a str, os: &'a OsRelease, offer: &Offer<'a>) -> Self {
        let (current, target, broken) = match *offer {
            Offer::Upgrade { current, target } => (current, Some(target), None),
            Offer::UpToDate { current } => (current, None, None),
            Offer::Broken {
                current,
                target,
                reason,
            } => (current, Some(target), Some(reason)),
        };
        OfferOutput {
            index,
            upgrade: matches!(offer, Offer::Upgrade { .. }),
            current: current.map(ReleaseView::from),
            os_release: OsReleaseView {
                pretty_name: os.pretty_name(),
                version_id: os.version_id(),
                version_codename: os.version_codename(),
            },
            target: target.map(ReleaseView::from),
            upgrade_broken: broken,
        }
    }

    fn current_text(&self) -> String {
        match &self.current {
            Some(c) => c.to_string(),
            None => format!(
                "{} (not listed in the index)",
                self.os_release
                    .pretty_name
                    .or(self.os_release.version_id)
                    .unwrap_or("this system")
            ),
        }
    }
}

impl fmt::Display for OfferOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(target) = &self.target else {
            return writeln!(
                f,
                "Up to date: no supported release later than {} in {}.",
                self.current_text(),
                self.index
            );
        };
        if let Some(reason) = self.upgrade_broken.filter(|_| !self.upgrade) {
            return writeln!(
                f,
                "{target} is listed, but its publisher has stopped upgrades to it: {reason}"
            );
        }
        writeln!(
            f,
            "New release {target} is available (this system: {}).",
            self.current_text()
        )?;
        if let Some(description) = target.description {
            writeln!(f, "  {description}")?;
        }
        if let Some(notes) = target.release_notes_html.or(target.release_notes) {
            writeln!(f, "  release notes: {notes}")?;
        }
        match target.bundle {
            Some(b) => writeln!(
                f,
                "  bundle: {} ({} bytes, sha256 {})",
                ferry_fetch::resolve(self.index, &b.url),
                b.size,
                b.sha256
            )?,
            None => writeln!(
                f,
                "  the index gives no bundle for it: it cannot be upgraded to by ferry"
            )?,
        }
        if !target.supported {
            writeln!(f, "  note: the index marks it unsupported")?;
        }
        Ok(())
    }
}

fn check(args: &ReleaseArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    let ctx = context(args, root)?;
    let offer = decide(&ctx, args.to.as_deref())?;
    render::output(&OfferOutput::new(&ctx.url, &ctx.os, &offer), global);
    Ok(match offer {
        Offer::Upgrade { .. } => Exit::Ok,
        Offer::UpToDate { .. } | Offer::Broken { .. } => Exit::Failed,
    })
}

fn bundle_failure(error: BundleError, dir: &Path) -> Failure {
    let what = format!("the release bundle is refused: {error}");
    let failure = Failure::bad_input(what);
    match &error {
        BundleError::Sources {
            file, line, column, ..
        } => failure.at(&dir.join(file), Some(*line), Some(*column)),
        BundleError::Demoted { line, .. } => failure.at(&dir.join("demoted.cfg"), Some(*line), None),
        BundleError::Profile(e) => failure.at(&e.path, Some(e.line), Some(e.column)),
        BundleError::Signature(_) => failure
            .hint("only bundles signed by a valid key of the configured keyring are used; nothing was changed"),
        BundleError::Checksum { .. } | BundleError::Size { .. } => failure
            .hint("the download does not match the index; it was deleted and nothing was changed"),
        _ => failure.hint("nothing was changed"),
    }
}

/// The offered release, or the rendered reason there is none.
fn offered<'a>(
    ctx: &'a Context,
    to: Option<&str>,
    global: &Global,
) -> Result<Option<&'a ReleaseEntry>, Failure> {
    match decide(ctx, to)? {
        Offer::Upgrade { target, .. } => Ok(Some(target)),
        other => {
            render::output(&OfferOutput::new(&ctx.url, &ctx.os, &other), global);
            Ok(None)
        }
    }
}

fn fetch_bundle(
    args: &ReleaseArgs,
    dir: Option<&Path>,
    global: &Global,
    root: &SystemRoot,
) -> Result<Exit, Failure> {
    let ctx = context(args, root)?;
    let Some(target) = offered(&ctx, args.to.as_deref(), global)? else {
        return Ok(Exit::Failed);
    };
    let obtained = obtain(&ctx, target, dir, global)?;
    show_bundle(&obtained.0, target, dir.is_some(), global);
    Ok(Exit::Ok)
}

/// Downloads (resuming a partial file in the work directory), checks and
/// unpacks the target's bundle. The work directory is `dir`, or a
/// temporary one kept alive by the returned guard.
fn obtain(
    ctx: &Context,
    target: &ReleaseEntry,
    dir: Option<&Path>,
    global: &Global,
) -> Result<(ferry_release::Obtained, Option<tempfile::TempDir>), Failure> {
    let reference = target.bundle.as_ref().ok_or_else(|| {
        Failure::bad_input(format!("the index gives no Bundle for {}", target.dist))
            .at(Path::new(&ctx.url), Some(target.line), None)
            .expected("Bundle, Bundle-Size, Bundle-SHA256 (and Bundle-Signature) fields")
    })?;
    let keyring = ctx.config.keyring.clone().ok_or_else(|| {
        Failure::bad_input("no keyring is configured to verify the bundle").hint(format!(
            "set `keyring = \"/path\"` in {} under --root, or pass --keyring PATH",
            Path::new("/").join(CONFIG_PATH).display()
        ))
    })?;
    let (work, temporary) = match dir {
        Some(dir) => (dir.to_path_buf(), None),
        None => {
            let temporary = tempfile::Builder::new()
                .prefix("ferry-release-")
                .tempdir()
                .map_err(|e| Failure::failed(format!("cannot make a work directory: {e}")))?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let mut progress = Progress::new(global);
    progress.download(
        format!("downloading the bundle of {}", target.dist),
        Some(reference.size),
    );
    let obtained =
        ferry_release::obtain_bundle(reference, &ctx.url, &keyring, &work, &mut |done, total| {
            progress.advance_to(done, total)
        });
    progress.end();
    let obtained = obtained.map_err(|e| bundle_failure(e, &work.join("bundle")))?;
    Ok((obtained, temporary))
}

fn show_bundle(
    obtained: &ferry_release::Obtained,
    target: &ReleaseEntry,
    kept: bool,
    global: &Global,
) {
    let bundle = &obtained.bundle;
    render::output(
        &FetchOutput {
            target: ReleaseView::from(target),
            signed_by: &obtained.verified,
            sources: &bundle.sources,
            demoted: &bundle.demoted,
            profile: bundle.profile.as_ref().map(|p| p.name.as_str()),
            dir: kept.then_some(bundle.dir.as_path()),
        },
        global,
    );
}

/// A release's bundle, downloaded and verified: who signed it and what it
/// holds; `dir` is where it is unpacked when it was kept (`--dir`).
#[derive(Debug, Serialize)]
pub struct FetchOutput<'a> {
    pub target: ReleaseView<'a>,
    pub signed_by: &'a Verified,
    pub sources: &'a [NewSources],
    pub demoted: &'a [PackageName],
    pub profile: Option<&'a str>,
    pub dir: Option<&'a Path>,
}

impl fmt::Display for FetchOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Bundle for {} verified ({} signature by {}).",
            self.target,
            self.signed_by.tool,
            self.signed_by.signers.join(", ")
        )?;
        for sources in self.sources {
            writeln!(
                f,
                "  sources: {} -> /{}",
                sources.name,
                sources.install_to.display()
            )?;
        }
        let demoted: Vec<&str> = self.demoted.iter().map(|p| p.as_str()).collect();
        writeln!(
            f,
            "  demoted: {}",
            if demoted.is_empty() {
                "none".to_string()
            } else {
                demoted.join(" ")
            }
        )?;
        if let Some(profile) = self.profile {
            writeln!(f, "  profile: {profile}")?;
        }
        if let Some(dir) = self.dir {
            writeln!(f, "  unpacked in {}", dir.display())?;
        }
        Ok(())
    }
}

/// `ferry release upgrade --dry-run`: the verified bundle's target and the
/// plan of the migration it makes.
#[derive(Debug, Serialize)]
pub struct UpgradePlanOutput<'a> {
    pub target: ReleaseView<'a>,
    pub signed_by: &'a Verified,
    pub blocked: bool,
    pub plan: PlanView<'a>,
}

impl fmt::Display for UpgradePlanOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Upgrade to {}: bundle verified ({} signature by {}).\n",
            self.target,
            self.signed_by.tool,
            self.signed_by.signers.join(", ")
        )?;
        write!(f, "{}", self.plan)
    }
}

/// `ferry release bundle`: the fields a publisher pastes into the index.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct BuiltOutput<'a>(pub &'a Built);

impl fmt::Display for BuiltOutput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &Path| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        writeln!(f, "Bundle: {}", name(&self.0.archive))?;
        writeln!(f, "Bundle-Size: {}", self.0.size)?;
        writeln!(f, "Bundle-SHA256: {}", self.0.sha256)?;
        writeln!(f, "Bundle-Signature: {}", name(&self.0.signature))
    }
}

/// Where an upgrade keeps its download, under the root, so a second
/// attempt resumes a partial bundle instead of starting over.
fn upgrade_work_dir(root: &SystemRoot, target: &ReleaseEntry) -> std::path::PathBuf {
    let name: String = target
        .dist
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    root.host_path("var/cache/ferry/release").join(name)
}

fn upgrade(args: &UpgradeArgs, global: &Global, root: &SystemRoot) -> Result<Exit, Failure> {
    if args.dry_run {
        migrate::readable_for_plan(root, "ferry release upgrade --dry-run")?;
    }
    let ctx = context(&args.release, root)?;
    let Some(target) = offered(&ctx, args.release.to.as_deref(), global)? else {
        return Ok(Exit::Failed);
    };
    // A dry run writes nothing under the root, not even the download.
    let work = (!args.dry_run).then(|| upgrade_work_dir(root, target));
    if let Some(work) = &work {
        std::fs::create_dir_all(work)
            .map_err(|e| Failure::failed(format!("{}: {e}", work.display())))?;
    }
    let (obtained, _temporary) = obtain(&ctx, target, work.as_deref(), global)?;
    let migration = ferry_release::to_migration(&obtained.bundle, target);
    let profile = migration.profile;
    if args.dry_run {
        let plan = migrate::planning(root, &profile, global)?;
        render::output(
            &UpgradePlanOutput {
                target: ReleaseView::from(target),
                signed_by: &obtained.verified,
                blocked: plan.blocked(),
                plan: PlanView::from(&plan)
                    .carried_out_by("ferry release upgrade")
                    .verbose(global.verbose),
            },
            global,
        );
        return Ok(if plan.blocked() {
            Exit::Blocked
        } else {
            Exit::Ok
        });
    }
    migrate::confirm(args.yes, "ferry release upgrade", &profile)?;
    migrate::warn_if_remote(global);
    migrate::detach_from_terminal_hangup();
    let options = ferry_apt::RunOptions {
        no_rollback: args.no_rollback,
        observer: migrate::test_observer(),
    };
    let mut progress = migrate::RunProgress::new(global, args.no_rollback);
    progress.planning(&profile);
    let result =
        ferry_apt::run(root, &profile, &options, &mut progress).map_err(migrate::run_failure);
    let outcome = progress.settle(result)?;
    migrate::finish(outcome, global, args.no_rollback)
}

fn build(dir: &Path, output: &Path, sign: SignWith, global: &Global) -> Result<Exit, Failure> {
    let built =
        ferry_release::build_bundle(dir, output, &sign).map_err(|e| bundle_failure(e, dir))?;
    render::output(&BuiltOutput(&built), global);
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    //! What people and scripts see of release checks, fetched bundles and
    //! built bundles, reviewed as snapshots over a fixed index.

    use super::*;

    const INDEX: &str = "\
Dist: bookworm
Name: Debian 12
Version: 12
Date: Sat, 10 Jun 2023 00:00:00 UTC
Supported: 1

Dist: trixie
Name: Debian 13
Version: 13
Date: Sat, 09 Aug 2025 00:00:00 UTC
Supported: 1
Description: Debian 13
ReleaseNotes: https://www.example.org/releases/trixie/
Bundle: trixie.tar.xz
Bundle-Size: 10240
Bundle-SHA256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
";

    const URL: &str = "https://releases.example.org/meta-release";

    fn index(extra: &str) -> MetaRelease {
        MetaRelease::parse(&format!("{INDEX}{extra}")).unwrap()
    }

    fn bookworm() -> OsRelease {
        OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
        )
        .unwrap()
    }

    #[test]
    fn release_dates_are_iso_8601_utc() {
        let index = index("");
        let json = serde_json::to_value(ReleaseView::from(&index.releases[1])).unwrap();
        assert_eq!(json["date"], "2025-08-09T00:00:00Z");
        assert!(json.get("timestamp").is_none());
    }

    #[test]
    fn an_offered_upgrade() {
        let (index, os) = (index(""), bookworm());
        let offer = offer(&index, &os, None).unwrap();
        let output = OfferOutput::new(URL, &os, &offer);
        insta::assert_snapshot!("offer_upgrade_for_people", output.to_string());
        insta::assert_json_snapshot!("offer_upgrade_as_json", output);
    }

    #[test]
    fn up_to_date() {
        let index = index("");
        let os = OsRelease::parse("VERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n").unwrap();
        let offer = offer(&index, &os, None).unwrap();
        let output = OfferOutput::new(URL, &os, &offer);
        insta::assert_snapshot!("offer_up_to_date_for_people", output.to_string());
        insta::assert_json_snapshot!("offer_up_to_date_as_json", output);
    }

    #[test]
    fn a_stopped_upgrade() {
        let (index, os) = (
            index("UpgradeBroken: the new kernel does not boot on some machines\n"),
            bookworm(),
        );
        let offer = offer(&index, &os, None).unwrap();
        let output = OfferOutput::new(URL, &os, &offer);
        assert!(!output.upgrade);
        insta::assert_snapshot!("offer_broken_for_people", output.to_string());
        insta::assert_json_snapshot!("offer_broken_as_json", output);
    }

    fn verified() -> Verified {
        Verified {
            tool: "sqv",
            signers: vec!["0123456789ABCDEF0123456789ABCDEF01234567".into()],
        }
    }

    #[test]
    fn a_fetched_bundle() {
        let index = index("");
        let sources = [NewSources {
            name: "debian.sources".into(),
            install_to: "etc/apt/sources.list.d/debian.sources".into(),
            text: "Types: deb\nURIs: http://deb.example.org/debian\nSuites: trixie\nComponents: main\n"
                .into(),
        }];
        let demoted = [PackageName::parse("legacy-tool").unwrap()];
        let verified = verified();
        let output = FetchOutput {
            target: ReleaseView::from(&index.releases[1]),
            signed_by: &verified,
            sources: &sources,
            demoted: &demoted,
            profile: Some("trixie-extras"),
            dir: Some(Path::new("/var/tmp/trixie")),
        };
        insta::assert_snapshot!("fetch_for_people", output.to_string());
        insta::assert_json_snapshot!("fetch_as_json", output);
    }

    #[test]
    fn a_built_bundle() {
        let built = Built {
            archive: "/srv/publish/trixie.tar.xz".into(),
            signature: "/srv/publish/trixie.tar.xz.sig".into(),
            size: 10240,
            sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            sources: vec!["debian.sources".into()],
            demoted: vec![PackageName::parse("legacy-tool").unwrap()],
        };
        insta::assert_snapshot!("bundle_for_people", BuiltOutput(&built).to_string());
        insta::assert_json_snapshot!("bundle_as_json", BuiltOutput(&built));
    }

    #[test]
    fn an_upgrade_dry_run() {
        let index = index("");
        let verified = verified();
        let plan = migrate::tests::plan();
        let output = UpgradePlanOutput {
            target: ReleaseView::from(&index.releases[1]),
            signed_by: &verified,
            blocked: plan.blocked(),
            plan: PlanView::from(&plan).carried_out_by("ferry release upgrade"),
        };
        insta::assert_snapshot!("upgrade_dry_run_for_people", output.to_string());
        insta::assert_json_snapshot!("upgrade_dry_run_as_json", output);
    }

    #[test]
    fn a_ready_dry_run_names_the_command_that_carries_it_out() {
        let mut plan = migrate::tests::plan();
        plan.findings
            .retain(|f| f.severity != ferry_apt::Severity::Blocker);
        let text = PlanView::from(&plan)
            .carried_out_by("ferry release upgrade")
            .to_string();
        assert!(
            text.ends_with("\nReady: `ferry release upgrade` would carry this out.\n"),
            "{text}"
        );
        assert!(!text.contains("ferry run"), "{text}");
    }
}
