//! The body of every fuzz target: `fuzz/fuzz_targets/<name>.rs` hands its
//! input to the function of the same name here, and so does the stable test
//! `tests/replay.rs` for every file kept in `fuzz/corpus/<name>/`, so a
//! replay runs exactly what was fuzzed, without nightly or cargo-fuzz.
//!
//! Dev-only. Each function states a property of a parser of outside input
//! and panics when it does not hold: a panic is the finding, here as under
//! libFuzzer, so these functions assert rather than return errors.

use std::cmp::Ordering;
use std::path::Path;

use ferry_apt::Profile;
use ferry_archive::{ArchiveError, Hints, NameMap};
use ferry_deb::deb822::{paragraphs, Syntax};
use ferry_deb::os_release::OsRelease;
use ferry_deb::package::{parse_binary_packages, parse_source_packages};
use ferry_deb::release::{split_clearsigned, Release};
use ferry_deb::sources::{parse_sources_text, Format};
use ferry_deb::{Relations, VersionRef};
use ferry_release::parse_demoted;
use ferry_release::MetaRelease;
use ferry_takeover::network::{
    connection_from_keyfile, parse_ifupdown, parse_keyfile, parse_wpa_supplicant, to_keyfile,
    Connection, Network,
};

/// What every target is: a property checked on one input.
pub type Entry = fn(&[u8]);

/// Every fuzz target, by the name of its binary in fuzz/Cargo.toml and of
/// its corpus directory.
pub const TARGETS: [(&str, Entry); 19] = [
    ("bmap", bmap),
    ("deb822", deb822),
    ("disk_image", disk_image),
    ("fleet_api", fleet_api),
    ("grub_cfg", grub_cfg),
    ("hints", hints),
    ("ifupdown", ifupdown),
    ("meta_release", meta_release),
    ("mqtt_hint", mqtt_hint),
    ("name_map", name_map),
    ("nm_keyfile", nm_keyfile),
    ("os_release", os_release),
    ("packages", packages),
    ("profile", profile),
    ("relation", relation),
    ("release", release),
    ("sources", sources),
    ("version", version),
    ("wpa_supplicant", wpa_supplicant),
];

/// The deb822 paragraph reader never panics, with or without comments, and
/// every field it returns lies inside its paragraph.
pub fn deb822(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for syntax in [Syntax::INDEX, Syntax::WITH_COMMENTS] {
        for paragraph in paragraphs(text, syntax).flatten() {
            for field in &paragraph.fields {
                assert!(field.line >= paragraph.line);
                let _ = field.lines().count();
            }
        }
    }
}

/// Block maps given to `ferry image flash --bmap`: parsing never panics,
/// and a bmap it accepts has ordered ranges inside the image whose mapped
/// bytes fit in it.
pub fn bmap(data: &[u8]) {
    let Ok(bmap) = ferry_image::parse_bmap(data) else {
        return;
    };
    let mut previous = None;
    for range in &bmap.ranges {
        assert!(range.first <= range.last && range.last < bmap.blocks_count);
        if let Some(last) = previous {
            assert!(range.first > last);
        }
        previous = Some(range.last);
    }
    assert!(bmap.mapped_bytes() <= bmap.image_size);
}

/// Disk images given to `ferry image inspect` (and read by flash): reading
/// the table and probing filesystems never panics, and an accepted table has
/// partitions numbered once each, inside the image, that do not overlap.
pub fn disk_image(data: &[u8]) {
    let len = data.len() as u64;
    let Ok(inspection) = ferry_image::inspect_reader(
        std::io::Cursor::new(data.to_vec()),
        Some(len),
        Path::new("image"),
    ) else {
        return;
    };
    let sector = u64::from(inspection.sector_size);
    let mut numbers: Vec<u32> = inspection.partitions.iter().map(|p| p.number).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), inspection.partitions.len());
    for p in &inspection.partitions {
        if inspection.compression == "none" {
            assert!(
                (p.start + p.size) * sector <= len,
                "partition {} past the end",
                p.number
            );
        }
    }
    let _ = ferry_image::sfdisk_script(&inspection, "image");
    let _ = ferry_image::probe(data);
}

/// britney's hand-written and state files given to `ferry archive
/// excuses` (`--hints`, `--dates`, `--urgencies`, `--bugs-from/-to`):
/// parsing never panics, and every refusal points at a line (and for
/// hints a column) inside the text; judging an age never panics either.
pub fn hints(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ArchiveError::Hints { line, column, .. }) = Hints::parse(text, Path::new("hints")) {
        assert_inside(text, line, column);
    }
    let line_inside = |e: ArchiveError| {
        if let ArchiveError::Parse { line, .. } = e {
            assert!(line >= 1 && line <= text.lines().count(), "line {line}");
        }
    };
    let mut age = ferry_archive::Age::default();
    if let Err(e) = age.parse_dates(text, Path::new("Dates")) {
        line_inside(e);
    }
    if let Err(e) = age.parse_urgencies(text, Path::new("Urgency")) {
        line_inside(e);
    }
    for source in age.urgencies.keys().chain(age.dates.keys()) {
        let _ = age.judge(source, Some("1"), "2", None);
        let _ = age.judge(source, None, "1:0~x", Some(3));
    }
    if let Err(e) = ferry_archive::RcBugs::parse(text, Path::new("BugsV")) {
        line_inside(e);
    }
    let _ = ferry_archive::parse_day(text.trim());
}

/// Meta-release indices (fetched from a server): parsing and choosing an
/// offer never panic, and the demoted list of a bundle neither.
pub fn meta_release(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = MetaRelease::parse(text);
    let _ = parse_demoted(text);
}

/// Name maps of `ferry archive coverage --map` (a file from the operator):
/// parsing never panics, and every refusal points at a line and column
/// inside the text.
pub fn name_map(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(ArchiveError::Map { line, column, .. }) = NameMap::parse(text, Path::new("map")) {
        assert_inside(text, line, column);
    }
}

/// A refusal's line and column (1-based) lie inside `text`.
fn assert_inside(text: &str, line: usize, column: usize) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        line >= 1 && line <= lines.len(),
        "line {line} of {}",
        lines.len()
    );
    assert!(
        column >= 1 && column <= lines[line - 1].len().max(1),
        "column {column}"
    );
}

/// The fleet server's request decoders (enrolment, event batch, rollout and
/// result bodies, poll and event-list query strings; the first byte picks
/// which) never
/// panic and refuse bad input with a 4xx, never a 5xx: whatever a device or
/// a stranger sends is answered as its own fault, and an accepted batch
/// stores only what reads back as an event.
pub fn fleet_api(data: &[u8]) {
    use ferry_fleet::RequestKind;
    let Some((selector, input)) = data.split_first() else {
        return;
    };
    // Selectors 0-3 keep the kinds they had before rollouts, so the kept
    // corpus still means what it meant.
    let kind = match selector % 6 {
        0 => RequestKind::Enrol,
        1 => RequestKind::Events,
        2 => RequestKind::PollQuery,
        3 => RequestKind::EventsQuery,
        4 => RequestKind::Rollout,
        _ => RequestKind::Result,
    };
    if let Err((status, message)) = ferry_fleet::decode_request(kind, input) {
        assert!(
            (400..500).contains(&status),
            "{kind:?} answered {status}: {message}"
        );
    }
}

/// The MQTT hint decoder never panics, whatever a broker delivers; what
/// it accepts is a version-1 hint that encodes back to a payload it
/// accepts again as the same hint, and a payload over the size limit is
/// refused unread.
pub fn mqtt_hint(data: &[u8]) {
    match ferry_fleet::decode_hint(data) {
        Ok(hint) => {
            assert_eq!(hint.v, ferry_fleet::HINT_VERSION);
            assert!(data.len() <= ferry_fleet::MAX_HINT);
            assert_eq!(ferry_fleet::decode_hint(&hint.encode()), Ok(hint));
        }
        Err(ferry_fleet::HintError::TooLarge(n)) => {
            assert_eq!(n, data.len());
            assert!(n > ferry_fleet::MAX_HINT);
        }
        Err(_) => {}
    }
}

/// os-release parsing never panics, and every accessor works on what
/// parses.
pub fn os_release(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(os) = OsRelease::parse(text) {
        let _ = (
            os.id(),
            os.id_like(),
            os.version_id(),
            os.version_codename(),
        );
        let _ = os.entries().count();
    }
}

/// Reading typed binary and source records from any text never panics.
pub fn packages(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_binary_packages(text);
    let _ = parse_source_packages(text);
}

/// Migration profiles (TOML from the operator): checking never panics, and
/// every refusal points inside the text.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Profile::parse(text, Path::new("/nonexistent/fuzz.toml")) {
        assert!(
            e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
            "line {} of {}",
            e.line,
            text.lines().count()
        );
    }
}

/// Relation parsing never panics, and what it parses prints back to text
/// that parses to the same relations.
pub fn relation(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(relations) = Relations::parse(text) {
        let printed = relations.to_string();
        match Relations::parse(&printed) {
            Ok(again) => assert_eq!(again.to_string(), printed),
            Err(e) => panic!("printed relations {printed:?} do not parse: {e}"),
        }
    }
}

/// Release files and clear-signed InRelease files: parsing and splitting
/// never panic on any text.
pub fn release(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Release::parse(text);
    let _ = Release::parse_inrelease(text);
    if let Ok(signed) = split_clearsigned(text) {
        let _ = Release::parse(&signed.text);
    }
}

/// APT sources in both formats: parsing never panics, what parses renders
/// back byte-identical, and converting one-line text to deb822 gives text
/// that parses again (or a refusal naming the entry it cannot express).
pub fn sources(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::OneLine, Format::Deb822] {
        if let Ok(document) = parse_sources_text(text, format) {
            assert_eq!(document.text(), text);
            if format == Format::OneLine {
                // An entry deb822 cannot express is refused, never mangled.
                let Ok(converted) = document.to_deb822() else {
                    continue;
                };
                assert!(
                    parse_sources_text(&converted, Format::Deb822).is_ok(),
                    "converted text does not parse:\n{converted}"
                );
            }
        }
    }
}

/// Version parsing never panics, and ordering is a total order on what
/// parses: antisymmetric and consistent with equality of the text.
pub fn version(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let middle = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let (a, b) = text.split_at(middle);
    let _ = VersionRef::parse(text);
    if let (Ok(x), Ok(y)) = (VersionRef::split(a), VersionRef::split(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
        assert_eq!(x.cmp(&x), Ordering::Equal);
    }
}

/// A connection written as a keyfile reads back as the same connection.
fn assert_keyfile_round_trip(connection: &Connection) {
    let text = to_keyfile(connection).render();
    let path = Path::new("out.nmconnection");
    let keyfile = parse_keyfile(&text, path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut back =
        connection_from_keyfile(&keyfile, &text, path).unwrap_or_else(|e| panic!("{e}\n{text}"));
    back.keyfile = None;
    assert_eq!(&back, connection, "{text}");
}

/// ifupdown `interfaces` files carried by `ferry takeover`: parsing never
/// panics, and every connection it accepts is written as a keyfile that
/// reads back as the same connection.
pub fn ifupdown(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(net) = parse_ifupdown(text, Path::new("interfaces")) else {
        return;
    };
    for connection in &net.connections {
        assert_keyfile_round_trip(connection);
    }
}

/// wpa_supplicant.conf files carried by `ferry takeover`: parsing never
/// panics, and every network it accepts is written as a keyfile that reads
/// back as the same connection.
pub fn wpa_supplicant(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut net = Network::default();
    let path = Path::new("wpa_supplicant.conf");
    let Ok(networks) = parse_wpa_supplicant(text, path, Some("wlan0".into()), &mut net) else {
        return;
    };
    for (line, connection) in &networks {
        assert!(*line >= 1 && *line <= text.lines().count());
        assert_keyfile_round_trip(connection);
    }
}

/// NetworkManager keyfiles carried by `ferry takeover`: reading never
/// panics, a keyfile rendered again reads back the same, and its reading
/// as a connection never panics.
pub fn nm_keyfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("in.nmconnection");
    let Ok(keyfile) = parse_keyfile(text, path) else {
        return;
    };
    let rendered = keyfile.render();
    let again = parse_keyfile(&rendered, path).unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(again, keyfile, "{rendered}");
    if let Ok(connection) = connection_from_keyfile(&keyfile, text, path) {
        // Passed through as it was.
        assert_eq!(to_keyfile(&connection), keyfile);
    }
}

/// A new OS's grub.cfg and an old OS's grubenv, read by `ferry takeover`
/// (strategy flasher): the first entry's kernel lines are found or not,
/// never a panic; a grubenv set once stays 1024 bytes and setting the same
/// variable again changes nothing.
pub fn grub_cfg(data: &[u8]) {
    use ferry_takeover::flasher::{custom_cfg, parse_entry, set_grubenv};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((linux, initrd)) = parse_entry(text) {
        assert!(linux.starts_with("linux"), "{linux}");
        assert!(initrd.starts_with("initrd"), "{initrd}");
        let cfg = custom_cfg("t", "uuid", &linux, &initrd, 600);
        assert!(cfg.contains("panic="), "{cfg}");
    }
    if let Ok(env) = set_grubenv(text, "ferry_takeover", "committed") {
        assert_eq!(env.len(), 1024);
        let again = set_grubenv(&env, "ferry_takeover", "committed")
            .unwrap_or_else(|e| panic!("{e}\n{env}"));
        assert_eq!(again, env);
    }
}
