//! `parse_sources_text` is total (the fuzz target's entry point): mutated
//! fixtures in both formats give a document or an error, never a panic; a
//! parsed document renders back byte-identical, rewrites either succeed
//! with a parseable result or are refused, and a one-line document always
//! converts to deb822 text that parses. A quick stand-in for the fuzzer that
//! runs with every `cargo test`.

use std::fs;
use std::path::Path;

use ferry_deb::sources::{
    parse_sources_text, ComponentsChange, Edit, Format, Matcher, SignedBy, SignedByChange,
    SuiteChange, UriChange,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Pieces that steer mutations towards the interesting syntax.
const PIECES: &[&str] = &[
    "deb",
    "deb-src",
    "[",
    "]",
    "#",
    "=",
    ":",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\"",
    "%",
    "%2",
    "/",
    "./",
    "arch=",
    "signed-by=",
    ",",
    "Types:",
    "URIs:",
    "Suites:",
    "Components:",
    "Enabled: no",
    "Signed-By:",
    "\n ",
    "\n .",
    "é",
    "http://x",
    "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    "-----END PGP PUBLIC KEY BLOCK-----",
];

/// The nearest char boundary at or before `at`.
fn boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A few random insertions of syntax pieces, deletions and duplications.
fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut out = text.to_string();
    for _ in 0..rng.gen_range(1..6) {
        let at = boundary(&out, rng.gen_range(0..=out.len()));
        match rng.gen_range(0..3) {
            0 => out.insert_str(at, PIECES[rng.gen_range(0..PIECES.len())]),
            1 => {
                let end = boundary(&out, at + rng.gen_range(1..12));
                out.replace_range(at..end, "");
            }
            _ => {
                let end = boundary(&out, at + rng.gen_range(1..40));
                let copy = out[at..end].to_string();
                let to = boundary(&out, rng.gen_range(0..=out.len()));
                out.insert_str(to, &copy);
            }
        }
    }
    out
}

fn edits() -> Vec<(Matcher, Edit)> {
    let all = Matcher::default();
    vec![
        (
            all.clone(),
            Edit {
                suite: Some(SuiteChange::ReplaceCodename {
                    from: "bookworm".into(),
                    to: "trixie".into(),
                }),
                components: Some(ComponentsChange::Add(vec!["contrib".into()])),
                ..Edit::default()
            },
        ),
        (
            all.clone(),
            Edit {
                uri: Some(UriChange::ReplacePrefix {
                    from: "http://deb.example.org".into(),
                    to: "https://new.example.net".into(),
                }),
                signed_by: Some(SignedByChange::Set(SignedBy::keyring(
                    "/usr/share/keyrings/new.gpg",
                ))),
                enabled: Some(false),
                ..Edit::default()
            },
        ),
        (
            all,
            Edit {
                components: Some(ComponentsChange::Remove(vec!["main".into()])),
                signed_by: Some(SignedByChange::Remove),
                enabled: Some(true),
                ..Edit::default()
            },
        ),
    ]
}

#[test]
fn parsing_rewriting_and_converting_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sources");
    let seeds = [
        ("bookworm/etc/apt/sources.list", Format::OneLine),
        ("ubuntu/etc/apt/sources.list", Format::OneLine),
        (
            "thirdparty/etc/apt/sources.list.d/multi-arch.list",
            Format::OneLine,
        ),
        (
            "deb822/etc/apt/sources.list.d/vendor.sources",
            Format::Deb822,
        ),
        (
            "deb822/etc/apt/sources.list.d/debian.sources",
            Format::Deb822,
        ),
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let edits = edits();
    let (mut parsed, mut refused) = (0, 0);
    for (path, format) in seeds {
        let seed = fs::read_to_string(root.join(path)).unwrap();
        for _ in 0..400 {
            let text = mutate(&mut rng, &seed);
            for format in [format, Format::OneLine, Format::Deb822] {
                let Ok(document) = parse_sources_text(&text, format) else {
                    refused += 1;
                    continue;
                };
                parsed += 1;
                assert_eq!(document.text(), text);
                for (matcher, edit) in &edits {
                    if let Ok(rewritten) = document.rewrite(matcher, edit) {
                        parse_sources_text(rewritten.document.text(), format).unwrap();
                    }
                }
                if format == Format::OneLine {
                    // An entry deb822 cannot express is refused, never mangled.
                    let Ok(converted) = document.to_deb822() else {
                        continue;
                    };
                    if let Err(e) = parse_sources_text(&converted, Format::Deb822) {
                        panic!("{e}\n--- from ---\n{text}\n--- to ---\n{converted}");
                    }
                }
            }
        }
    }
    eprintln!("{parsed} mutated texts parsed, {refused} refused");
    assert!(
        parsed > 500 && refused > 500,
        "mutations should both keep and break files"
    );
}
