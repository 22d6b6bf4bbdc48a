//! Which Debian mirror a chroot is made from: `FERRY_TEST_MIRROR`, else the
//! host's own apt configuration, read at run time so no mirror's name is
//! ever written into the project.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::TestkitError;

/// One `deb` source of the host: its URI and suites.
#[derive(Debug, PartialEq, Eq)]
struct HostSource {
    uri: String,
    suites: Vec<String>,
}

/// The mirror for `suite`: `FERRY_TEST_MIRROR` if set, else the URI of the
/// host's `deb` source listing `suite`, else of its first main archive
/// source (a suite without `-updates`, `-security`, …).
pub fn host_mirror(suite: &str) -> Result<String, TestkitError> {
    if let Some(mirror) = std::env::var_os("FERRY_TEST_MIRROR") {
        return Ok(mirror.to_string_lossy().into_owned());
    }
    let sources = host_sources(Path::new("/etc/apt"));
    choose(&sources, suite).ok_or_else(|| {
        TestkitError::Unavailable(
            "no Debian mirror in /etc/apt/sources.list{,.d}; set FERRY_TEST_MIRROR".into(),
        )
    })
}

/// Whether a TCP connection to the mirror's host can be opened, and if
/// not, why.
pub(crate) fn probe(mirror: &str) -> Result<(), String> {
    let rest = mirror.split_once("://").map_or(mirror, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let default_port = if mirror.starts_with("https://") {
        443
    } else {
        80
    };
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the mirror's host: {e}"))?;
    for addr in addrs {
        if TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok() {
            return Ok(());
        }
    }
    Err("cannot reach the mirror (no network?)".into())
}

fn choose(sources: &[HostSource], suite: &str) -> Option<String> {
    let listing = sources.iter().find(|s| s.suites.iter().any(|x| x == suite));
    let main_archive = || {
        sources
            .iter()
            .find(|s| s.suites.iter().any(|x| !x.contains(['-', '/'])))
    };
    listing.or_else(main_archive).map(|s| s.uri.clone())
}

fn host_sources(etc_apt: &Path) -> Vec<HostSource> {
    let mut sources = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(etc_apt.join("sources.list.d"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => sources.extend(parse_deb822(&text)),
            Some("list") => sources.extend(parse_one_line(&text)),
            _ => {}
        }
    }
    if let Ok(text) = std::fs::read_to_string(etc_apt.join("sources.list")) {
        sources.extend(parse_one_line(&text));
    }
    sources
}

fn parse_deb822(text: &str) -> Vec<HostSource> {
    let mut sources = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    for stanza in lines.split(|l| l.trim().is_empty()) {
        let field = |name: &str| {
            stanza.iter().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                key.trim().eq_ignore_ascii_case(name).then(|| {
                    value
                        .split_whitespace()
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
            })
        };
        let is_deb = field("Types").is_some_and(|t| t.iter().any(|t| t == "deb"));
        let enabled = field("Enabled").is_none_or(|e| e.first().map(String::as_str) != Some("no"));
        let suites = field("Suites").unwrap_or_default();
        if is_deb && enabled {
            for uri in field("URIs").unwrap_or_default() {
                sources.push(HostSource {
                    uri,
                    suites: suites.clone(),
                });
            }
        }
    }
    sources
}

fn parse_one_line(text: &str) -> Vec<HostSource> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some(rest) = line.trim().strip_prefix("deb ") else {
            continue;
        };
        let rest = match rest.trim_start().strip_prefix('[') {
            Some(options) => options.split_once(']').map_or("", |(_, r)| r),
            None => rest,
        };
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            sources.push(HostSource {
                uri: uri.into(),
                suites: vec![suite.into()],
            });
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_and_one_line_sources_are_read() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb deb-src\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\nTypes: deb\nEnabled: no\nURIs: http://off.invalid/\nSuites: trixie\n";
        let sources = parse_deb822(deb822);
        assert_eq!(sources.len(), 2);
        assert_eq!(
            choose(&sources, "bookworm").unwrap(),
            "http://mirror.invalid/debian"
        );
        assert_eq!(
            choose(&sources, "bookworm-security").unwrap(),
            "http://mirror.invalid/debian-security"
        );
        assert_eq!(
            choose(&sources, "trixie").unwrap(),
            "http://mirror.invalid/debian"
        );

        let list = "deb [signed-by=/k.gpg arch=amd64] http://one.invalid/debian bookworm main\n# deb http://no.invalid/ x\ndeb-src http://src.invalid/ bookworm main\n";
        let sources = parse_one_line(list);
        assert_eq!(
            sources,
            [HostSource {
                uri: "http://one.invalid/debian".into(),
                suites: vec!["bookworm".into()]
            }]
        );
    }
}
