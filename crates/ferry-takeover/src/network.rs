//! The old OS's network configuration carried into the new OS: ifupdown
//! `interfaces` (with its includes), wpa_supplicant networks and existing
//! NetworkManager keyfiles are read from a root directory into one typed
//! model, [`Connection`], and written as NetworkManager keyfiles.
//!
//! What the model cannot carry (bonds, bridges, VLANs, inet6, 802.1X, WEP,
//! commands in `up` lines other than routes) is reported as a [`Warning`],
//! never dropped silently. Bad input is a [`NetworkError`] naming the file
//! and line; no parser here panics. Not for: running or asking any network
//! daemon, and nothing here knows apt.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the network configuration could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NetworkError {
    fn syntax(path: &Path, line: usize, message: impl Into<String>) -> Self {
        NetworkError::Syntax {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    fn io(path: &Path, source: std::io::Error) -> Self {
        NetworkError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Something in the old configuration that is not carried over, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// An IPv4 address with its prefix length, as `192.0.2.10/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/N` with N at most 32.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
        Some(Cidr {
            addr: addr.parse().ok()?,
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The prefix length of a dotted netmask; `None` when its bits are not contiguous.
fn netmask_prefix(mask: &str) -> Option<u8> {
    let bits = u32::from(mask.parse::<Ipv4Addr>().ok()?);
    let prefix = bits.leading_ones();
    (bits.checked_shl(prefix).unwrap_or(0) == 0).then_some(prefix as u8)
}

/// A static route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dest: Cidr,
    pub via: Option<Ipv4Addr>,
    pub metric: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// DHCP (NetworkManager `auto`).
    Dhcp,
    /// Addresses given (NetworkManager `manual`).
    Static,
    /// Link up without IPv4 (ifupdown `manual`, NetworkManager `disabled`).
    Disabled,
}

/// The IPv4 settings of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4 {
    pub method: Method,
    pub addresses: Vec<Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub routes: Vec<Route>,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
}

impl Ipv4 {
    fn dhcp() -> Ipv4 {
        Ipv4 {
            method: Method::Dhcp,
            addresses: Vec::new(),
            gateway: None,
            routes: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
        }
    }
}

/// How a Wi-Fi network authenticates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    Open,
    /// WPA-PSK with a passphrase (8 to 63 characters) or 64 hex digits.
    WpaPsk(String),
    /// Another NetworkManager key-mgmt (wpa-eap, ...), only from a keyfile
    /// passed through as it was.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wifi {
    pub ssid: String,
    pub security: Security,
    pub hidden: bool,
}

/// What kind of link a connection is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Ethernet,
    Wifi(Wifi),
    /// Another NetworkManager type (bridge, vpn, ...), only ever from a keyfile
    /// that is passed through as it was.
    Other(String),
}

/// One connection to set up on the new OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The connection's name: the interface, or the SSID of a Wi-Fi network.
    pub id: String,
    pub interface: Option<String>,
    pub kind: Kind,
    pub autoconnect: bool,
    /// wpa_supplicant `priority` / NetworkManager `autoconnect-priority`.
    pub priority: i32,
    pub ipv4: Ipv4,
    /// A NetworkManager keyfile read from the old OS: written back as it was
    /// (it may hold settings the model does not), the typed fields above
    /// being its reading.
    pub keyfile: Option<Keyfile>,
}

impl Connection {
    /// The keyfile's own uuid, or one derived from the id: the first 16
    /// bytes of sha256("ferry-takeover connection " + id) with the version
    /// nibble 8 (RFC 9562 custom) and the RFC variant bits, so the same old
    /// configuration always gives byte-identical keyfiles.
    pub fn uuid(&self) -> String {
        if let Some(uuid) = self
            .keyfile
            .as_ref()
            .and_then(|k| k.get("connection", "uuid"))
        {
            return uuid.to_string();
        }
        deterministic_uuid(&self.id)
    }
}

fn deterministic_uuid(id: &str) -> String {
    let hex = ferry_fetch::sha256_hex(format!("ferry-takeover connection {id}").as_bytes());
    let mut digits: Vec<char> = hex.chars().take(32).collect();
    digits[12] = '8';
    // Variant 10xx: the high two bits of the 17th digit.
    let v = digits[16].to_digit(16).unwrap_or(0);
    digits[16] = char::from_digit(8 | (v & 3), 16).unwrap_or('8');
    let s: String = digits.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

/// What was read from a root: the connections, and what was not carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub connections: Vec<Connection>,
    pub warnings: Vec<Warning>,
}

impl Network {
    /// Adds `connection` unless one with its id (or, for Wi-Fi, its SSID)
    /// is already there: the first source read wins and the other is warned about.
    fn add(&mut self, connection: Connection, path: &Path, line: usize) {
        let ssid = |c: &Connection| match &c.kind {
            Kind::Wifi(w) => Some(w.ssid.clone()),
            _ => None,
        };
        let wired = |c: &Connection| match c.kind {
            Kind::Ethernet => c.interface.clone(),
            _ => None,
        };
        let duplicate = self.connections.iter().any(|c| {
            c.id == connection.id
                || (ssid(c).is_some() && ssid(c) == ssid(&connection))
                || (wired(c).is_some() && wired(c) == wired(&connection))
        });
        if duplicate {
            self.warn(
                path,
                line,
                format!(
                    "connection {:?} is already defined elsewhere; this one is not carried",
                    connection.id
                ),
            );
        } else {
            self.connections.push(connection);
        }
    }

    fn warn(&mut self, path: &Path, line: usize, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        });
    }
}

/// Reads the network configuration of the OS under `root`, in this order
/// (the first definition of a connection wins): NetworkManager keyfiles,
/// ifupdown `etc/network/interfaces`, wpa_supplicant. Missing files are
/// fine; an unreadable or malformed one is an error.
pub fn read_root(root: &Path) -> Result<Network, NetworkError> {
    let mut net = Network::default();
    let nm_dir = root.join("etc/NetworkManager/system-connections");
    for path in list_dir(&nm_dir, |name| name.ends_with(".nmconnection"))? {
        let text = read_text(&path)?;
        let connection = connection_from_keyfile(&parse_keyfile(&text, &path)?, &text, &path)?;
        net.add(connection, &path, 1);
    }
    let interfaces = root.join("etc/network/interfaces");
    if interfaces.exists() {
        read_ifupdown(root, &interfaces, &mut net)?;
    }
    let wpa_dir = root.join("etc/wpa_supplicant");
    let is_conf = |name: &str| name.starts_with("wpa_supplicant") && name.ends_with(".conf");
    for path in list_dir(&wpa_dir, is_conf)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        // wpa_supplicant-wlan0.conf is the per-interface file of systemd's
        // wpa_supplicant@wlan0 unit.
        let interface = name
            .as_deref()
            .and_then(|n| n.strip_prefix("wpa_supplicant-"))
            .and_then(|n| n.strip_suffix(".conf"))
            .map(str::to_string);
        let text = read_text(&path)?;
        for (line, connection) in parse_wpa_supplicant(&text, &path, interface, &mut net)? {
            net.add(connection, &path, line);
        }
    }
    Ok(net)
}

fn read_text(path: &Path) -> Result<String, NetworkError> {
    let bytes = fs::read(path).map_err(|e| NetworkError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        NetworkError::syntax(path, line, "not UTF-8 text")
    })
}

/// The files of `dir` whose names pass `keep`, sorted; none when `dir` is absent.
fn list_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, NetworkError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetworkError::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| NetworkError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep(&name) && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

// ---------------------------------------------------------------- ifupdown

/// The logical lines of an interfaces file: comments dropped, `\`
/// continuations joined, each with the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let (start, mut acc) = pending.take().unwrap_or((number, String::new()));
        let trimmed = raw.trim();
        if acc.is_empty() && trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            acc.push_str(head);
            acc.push(' ');
            pending = Some((start, acc));
            continue;
        }
        acc.push_str(trimmed);
        if !acc.trim().is_empty() {
            out.push((start, acc.trim().to_string()));
        }
    }
    if let Some((start, acc)) = pending {
        if !acc.trim().is_empty() {
            out.push((start, acc.trim().to_string()));
        }
    }
    out
}

/// One `iface NAME inet METHOD` stanza being read.
struct Stanza {
    path: PathBuf,
    line: usize,
    name: String,
    method: Method,
    wpa_conf: bool,
    wpa_ssid: Option<String>,
    wpa_psk: Option<String>,
    ipv4: Ipv4,
    netmask: Option<u8>,
    /// Per address: given without a prefix, so the netmask line applies.
    unprefixed: Vec<bool>,
    /// Set when the stanza is reported as not carried.
    dropped: bool,
}

/// What reading an ifupdown tree collects before connections are made.
#[derive(Default)]
struct Ifupdown {
    auto: BTreeSet<String>,
    stanzas: Vec<Stanza>,
    seen: BTreeSet<PathBuf>,
}

/// Reads an ifupdown file tree (interfaces(5)) under `root`, starting at
/// `path`, into `net`; `source` and `source-directory` are followed inside
/// the root.
pub fn read_ifupdown(root: &Path, path: &Path, net: &mut Network) -> Result<(), NetworkError> {
    let mut state = Ifupdown::default();
    read_interfaces_file(Some(root), path, 0, &mut state, net)?;
    finish_ifupdown(state, net)
}

/// Parses the text of one interfaces file (no includes followed: they are
/// warned about). The fuzz target's entry.
pub fn parse_ifupdown(text: &str, path: &Path) -> Result<Network, NetworkError> {
    let mut net = Network::default();
    let mut state = Ifupdown::default();
    parse_interfaces(text, path, None, 0, &mut state, &mut net)?;
    finish_ifupdown(state, &mut net)?;
    Ok(net)
}

fn finish_ifupdown(state: Ifupdown, net: &mut Network) -> Result<(), NetworkError> {
    for stanza in state.stanzas {
        if stanza.dropped {
            continue;
        }
        if let Some((connection, path, line)) = stanza_connection(stanza, &state.auto, net)? {
            net.add(connection, &path, line);
        }
    }
    Ok(())
}

const MAX_INCLUDE_DEPTH: usize = 16;

fn read_interfaces_file(
    root: Option<&Path>,
    path: &Path,
    depth: usize,
    state: &mut Ifupdown,
    net: &mut Network,
) -> Result<(), NetworkError> {
    if !state.seen.insert(path.to_path_buf()) {
        return Ok(());
    }
    let text = read_text(path)?;
    parse_interfaces(&text, path, root, depth, state, net)
}

/// The files a `source PATTERN` or `source-directory DIR` line names, inside
/// `root`: absolute names are taken under the root, relative ones from the
/// including file's directory. Wildcards (`*`, `?`) in the last component only.
fn resolve_source(
    root: &Path,
    including: &Path,
    pattern: &str,
    dir_only: bool,
    line: usize,
) -> Result<Vec<PathBuf>, NetworkError> {
    let full = match pattern.strip_prefix('/') {
        Some(rel) => root.join(rel),
        None => including
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(pattern),
    };
    if dir_only {
        // run-parts names: letters, digits, '_' and '-' only.
        let ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        return list_dir(&full, ok);
    }
    let Some(name) = full.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Err(NetworkError::syntax(
            including,
            line,
            "source names no file",
        ));
    };
    let dir = full.parent().unwrap_or(root).to_path_buf();
    if dir.to_string_lossy().contains(['*', '?', '[']) {
        return Err(NetworkError::syntax(
            including,
            line,
            "wildcards are read in the last component of a source pattern only",
        ));
    }
    if !name.contains(['*', '?']) {
        return Ok(if full.is_file() {
            vec![full]
        } else {
            Vec::new()
        });
    }
    list_dir(&dir, |n| !n.starts_with('.') && glob_match(&name, n))
}

/// `*` and `?` matching, iteratively so no input makes it slow or deep.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Parses one interfaces file's text into `state`; `source` lines are
/// followed when a root is given.
fn parse_interfaces(
    text: &str,
    path: &Path,
    root: Option<&Path>,
    depth: usize,
    state: &mut Ifupdown,
    net: &mut Network,
) -> Result<(), NetworkError> {
    // Whether option lines belong to the last stanza in `stanzas` (false
    // after a mapping or an iface that is not carried as a whole).
    let mut in_iface = false;
    let mut in_other = false;
    for (line, text) in logical_lines(text) {
        let mut words = text.split_whitespace();
        let Some(keyword) = words.next() else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        match keyword {
            "auto" | "allow-hotplug" | "allow-auto" => {
                in_iface = false;
                in_other = false;
                state.auto.extend(rest.iter().map(|s| s.to_string()));
            }
            k if k.starts_with("allow-") => {
                in_iface = false;
                in_other = false;
            }
            "source" | "source-directory" => {
                in_iface = false;
                in_other = false;
                let [pattern] = rest[..] else {
                    return Err(NetworkError::syntax(
                        path,
                        line,
                        format!("{keyword} takes one path"),
                    ));
                };
                let Some(root) = root else {
                    net.warn(path, line, format!("`{text}` is not followed here"));
                    continue;
                };
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(NetworkError::syntax(path, line, "includes nested too deep"));
                }
                let dir_only = keyword == "source-directory";
                for file in resolve_source(root, path, pattern, dir_only, line)? {
                    read_interfaces_file(Some(root), &file, depth + 1, state, net)?;
                }
            }
            "mapping" | "rename" | "no-auto-down" | "no-scripts" => {
                in_iface = false;
                in_other = true;
                net.warn(path, line, format!("`{text}` is not carried"));
            }
            "iface" => {
                in_iface = false;
                in_other = true;
                let [name, family, method] = rest[..] else {
                    return Err(NetworkError::syntax(
                        path,
                        line,
                        "expected `iface NAME FAMILY METHOD`",
                    ));
                };
                let method = match (family, method) {
                    ("inet", "dhcp") => Method::Dhcp,
                    ("inet", "static") => Method::Static,
                    ("inet", "manual") => Method::Disabled,
                    ("inet", "loopback") => continue,
                    ("inet", "bootp" | "tunnel" | "ppp" | "wvdial" | "ipv4ll")
                    | ("inet6", _)
                    | ("ipx" | "can", _) => {
                        net.warn(
                            path,
                            line,
                            format!("iface {name} {family} {method} is not carried"),
                        );
                        continue;
                    }
                    ("inet", other) => {
                        return Err(NetworkError::syntax(
                            path,
                            line,
                            format!("unknown method {other:?} for inet"),
                        ))
                    }
                    (other, _) => {
                        return Err(NetworkError::syntax(
                            path,
                            line,
                            format!("unknown address family {other:?}"),
                        ))
                    }
                };
                let mut stanza = Stanza {
                    path: path.to_path_buf(),
                    line,
                    name: name.to_string(),
                    method,
                    wpa_conf: false,
                    wpa_ssid: None,
                    wpa_psk: None,
                    ipv4: Ipv4 {
                        method,
                        ..Ipv4::dhcp()
                    },
                    netmask: None,
                    unprefixed: Vec::new(),
                    dropped: false,
                };
                if name.contains('.') || name.starts_with("vlan") {
                    net.warn(path, line, format!("VLAN interface {name} is not carried"));
                    stanza.dropped = true;
                } else if name.contains(':') {
                    net.warn(path, line, format!("IP alias {name} is not carried"));
                    stanza.dropped = true;
                } else if name.len() > 15 || !name.chars().all(|c| c.is_ascii_graphic() && c != '/')
                {
                    return Err(NetworkError::syntax(
                        path,
                        line,
                        format!("{name:?} is not an interface name"),
                    ));
                }
                state.stanzas.push(stanza);
                in_iface = true;
                in_other = false;
            }
            option => {
                if in_other {
                    continue;
                }
                let Some(stanza) = state.stanzas.last_mut().filter(|_| in_iface) else {
                    return Err(NetworkError::syntax(
                        path,
                        line,
                        format!("option {option:?} outside an iface stanza"),
                    ));
                };
                if stanza.dropped {
                    continue;
                }
                iface_option(stanza, option, &rest, line, net)?;
            }
        }
    }
    Ok(())
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

fn iface_option(
    stanza: &mut Stanza,
    option: &str,
    args: &[&str],
    line: usize,
    net: &mut Network,
) -> Result<(), NetworkError> {
    let path = stanza.path.clone();
    let bad = |message: String| NetworkError::syntax(&path, line, message);
    let one = || match args {
        [value] => Ok(*value),
        _ => Err(bad(format!("{option} takes one value"))),
    };
    match option {
        "address" => {
            let value = one()?;
            let cidr = match value.split_once('/') {
                Some(_) => Cidr::parse(value),
                None => value.parse().ok().map(|addr| Cidr { addr, prefix: 32 }),
            };
            let Some(cidr) = cidr else {
                return Err(bad(format!("bad IPv4 address {value:?}")));
            };
            // Without a prefix, a netmask line (before or after) gives it;
            // with neither, ifupdown adds the address as /32.
            stanza.unprefixed.push(!value.contains('/'));
            stanza.ipv4.addresses.push(cidr);
        }
        "netmask" => {
            let value = one()?;
            let prefix = match value.parse::<u8>() {
                Ok(p) if p <= 32 => Some(p),
                _ => netmask_prefix(value),
            };
            let Some(prefix) = prefix else {
                return Err(bad(format!("bad netmask {value:?}")));
            };
            stanza.netmask = Some(prefix);
        }
        "gateway" => {
            let value = one()?;
            let Ok(gw) = value.parse() else {
                return Err(bad(format!("bad gateway {value:?}")));
            };
            stanza.ipv4.gateway = Some(gw);
        }
        "dns-nameservers" => {
            for value in args {
                let Ok(ip) = value.parse() else {
                    return Err(bad(format!("bad name server {value:?}")));
                };
                stanza.ipv4.dns.push(ip);
            }
        }
        "dns-search" | "dns-domain" => {
            for domain in args {
                let ok = domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
                if !ok {
                    return Err(bad(format!("bad search domain {domain:?}")));
                }
                stanza.ipv4.dns_search.push(domain.to_string());
            }
        }
        "up" | "post-up" => match parse_route_command(args) {
            Some(Ok(route)) if route.dest.prefix == 0 && stanza.ipv4.gateway.is_none() => {
                stanza.ipv4.gateway = route.via;
            }
            Some(Ok(route)) => stanza.ipv4.routes.push(route),
            Some(Err(message)) => return Err(bad(message)),
            None => net.warn(
                &path,
                line,
                format!("command `{option} {}` is not carried", args.join(" ")),
            ),
        },
        "wpa-conf" => stanza.wpa_conf = true,
        "wpa-ssid" => stanza.wpa_ssid = Some(unquote(&args.join(" ")).to_string()),
        "wpa-psk" => stanza.wpa_psk = Some(unquote(&args.join(" ")).to_string()),
        o if o.starts_with("bond") || o.starts_with("bridge") || o.starts_with("vlan") => {
            net.warn(
                &path,
                stanza.line,
                format!(
                    "iface {} is a bond, bridge or VLAN ({o}); it is not carried",
                    stanza.name
                ),
            );
            stanza.dropped = true;
        }
        o if o.starts_with("wpa-") && (o.contains("eap") || o == "wpa-identity") => {
            net.warn(
                &path,
                line,
                format!("802.1X ({o}) on {} is not carried", stanza.name),
            );
            stanza.dropped = true;
        }
        "down" | "pre-down" | "post-down" => {}
        other => net.warn(&path, line, format!("option {other:?} is not carried")),
    }
    Ok(())
}

/// A route from `ip route add ...` or `route add ...`; `None` for any other
/// command, an error for a route command with a bad address.
fn parse_route_command(args: &[&str]) -> Option<Result<Route, String>> {
    let words: Vec<&str> = args.iter().map(|a| a.trim_end_matches(';')).collect();
    let (dest_text, rest) = match words.as_slice() {
        ["ip", "route", "add", dest, rest @ ..]
        | ["/sbin/ip", "route", "add", dest, rest @ ..]
        | ["/usr/sbin/ip", "route", "add", dest, rest @ ..]
        | ["ip", "r", "add", dest, rest @ ..] => (dest.to_string(), rest),
        ["route" | "/sbin/route" | "/usr/sbin/route", "add", rest @ ..] => {
            return Some(net_tools_route(rest));
        }
        _ => return None,
    };
    let dest = if dest_text == "default" {
        Some(Cidr {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        })
    } else if dest_text.contains('/') {
        Cidr::parse(&dest_text)
    } else {
        dest_text.parse().ok().map(|addr| Cidr { addr, prefix: 32 })
    };
    let Some(dest) = dest else {
        return Some(Err(format!("bad route destination {dest_text:?}")));
    };
    let mut route = Route {
        dest,
        via: None,
        metric: None,
    };
    let mut it = rest.iter();
    while let Some(word) = it.next() {
        let value = it.next();
        match (*word, value) {
            ("via", Some(v)) => match v.parse() {
                Ok(ip) => route.via = Some(ip),
                Err(_) => return Some(Err(format!("bad route gateway {v:?}"))),
            },
            ("metric", Some(v)) => match v.parse() {
                Ok(m) => route.metric = Some(m),
                Err(_) => return Some(Err(format!("bad route metric {v:?}"))),
            },
            ("dev" | "proto" | "scope" | "src" | "table", Some(_)) => {}
            _ => return None,
        }
    }
    Some(Ok(route))
}

/// `route add [-net|-host] TARGET [netmask M] [gw G] [metric N] [dev D]`.
fn net_tools_route(args: &[&str]) -> Result<Route, String> {
    let mut it = args.iter().peekable();
    let mut host = false;
    if let Some(flag) = it.peek() {
        if **flag == "-net" || **flag == "-host" {
            host = **flag == "-host";
            it.next();
        }
    }
    let Some(target) = it.next() else {
        return Err("route add names no target".into());
    };
    let mut dest = if *target == "default" {
        Some(Cidr {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        })
    } else if target.contains('/') {
        Cidr::parse(target)
    } else {
        // Without a netmask a -net target is taken as one address, as
        // route(8) does for a host.
        let _ = host;
        target.parse().ok().map(|addr| Cidr { addr, prefix: 32 })
    };
    let mut route_via = None;
    let mut metric = None;
    while let Some(word) = it.next() {
        let Some(value) = it.next() else {
            return Err(format!("route add: {word} without a value"));
        };
        match *word {
            "netmask" => {
                let Some(prefix) = netmask_prefix(value) else {
                    return Err(format!("bad route netmask {value:?}"));
                };
                if let Some(d) = dest.as_mut() {
                    d.prefix = prefix;
                }
            }
            "gw" => match value.parse() {
                Ok(ip) => route_via = Some(ip),
                Err(_) => return Err(format!("bad route gateway {value:?}")),
            },
            "metric" => match value.parse() {
                Ok(m) => metric = Some(m),
                Err(_) => return Err(format!("bad route metric {value:?}")),
            },
            "dev" => {}
            other => return Err(format!("route add: unknown word {other:?}")),
        }
    }
    let Some(dest) = dest else {
        return Err(format!("bad route destination {target:?}"));
    };
    Ok(Route {
        dest,
        via: route_via,
        metric,
    })
}

/// The connection a stanza stands for, with where it was defined; `None`
/// when it only brings up a link for wpa_supplicant (`wpa-conf`), whose
/// networks are read from the wpa_supplicant files.
fn stanza_connection(
    mut stanza: Stanza,
    auto: &BTreeSet<String>,
    net: &mut Network,
) -> Result<Option<(Connection, PathBuf, usize)>, NetworkError> {
    // IPv4 servers first, as the keyfile lists them ([ipv4] before [ipv6]).
    stanza.ipv4.dns.sort_by_key(IpAddr::is_ipv6);
    if let Some(prefix) = stanza.netmask {
        for (address, unprefixed) in stanza.ipv4.addresses.iter_mut().zip(&stanza.unprefixed) {
            if *unprefixed {
                address.prefix = prefix;
            }
        }
    }
    if stanza.method == Method::Static && stanza.ipv4.addresses.is_empty() {
        return Err(NetworkError::syntax(
            &stanza.path,
            stanza.line,
            format!("iface {} inet static has no address", stanza.name),
        ));
    }
    if stanza.method == Method::Disabled {
        let ipv4 = &stanza.ipv4;
        if !ipv4.addresses.is_empty() || ipv4.gateway.is_some() || !ipv4.dns.is_empty() {
            net.warn(
                &stanza.path,
                stanza.line,
                format!(
                    "iface {} inet manual: its addresses, gateway and name servers are not carried",
                    stanza.name
                ),
            );
        }
        stanza.ipv4 = Ipv4 {
            method: Method::Disabled,
            ..Ipv4::dhcp()
        };
    }
    if stanza.wpa_conf && stanza.wpa_ssid.is_none() {
        net.warn(
            &stanza.path,
            stanza.line,
            format!(
                "iface {} takes its Wi-Fi networks from wpa-conf; they are read from etc/wpa_supplicant",
                stanza.name
            ),
        );
        return Ok(None);
    }
    let kind = match stanza.wpa_ssid.take() {
        Some(ssid) => {
            let security = match stanza.wpa_psk.take() {
                Some(psk) => {
                    check_psk(&psk)
                        .map_err(|m| NetworkError::syntax(&stanza.path, stanza.line, m))?;
                    Security::WpaPsk(psk)
                }
                None => Security::Open,
            };
            Kind::Wifi(Wifi {
                ssid,
                security,
                hidden: false,
            })
        }
        None => Kind::Ethernet,
    };
    let connection = Connection {
        id: stanza.name.clone(),
        interface: Some(stanza.name.clone()),
        kind,
        autoconnect: auto.contains(&stanza.name),
        priority: 0,
        ipv4: stanza.ipv4,
        keyfile: None,
    };
    Ok(Some((connection, stanza.path, stanza.line)))
}

/// A WPA pre-shared key: a passphrase of 8 to 63 printable ASCII
/// characters, or 64 hex digits.
fn check_psk(psk: &str) -> Result<(), String> {
    let hex = psk.len() == 64 && psk.chars().all(|c| c.is_ascii_hexdigit());
    let passphrase = (8..=63).contains(&psk.len()) && psk.chars().all(|c| (' '..='~').contains(&c));
    if hex || passphrase {
        Ok(())
    } else {
        Err("a WPA key is 8 to 63 printable characters or 64 hex digits".into())
    }
}

// ----------------------------------------------------------- wpa_supplicant

/// The networks of a wpa_supplicant.conf, each with the line of its
/// `network={`. Networks that cannot be carried (802.1X, WEP, non-UTF-8
/// SSIDs) are warned about in `net`.
pub fn parse_wpa_supplicant(
    text: &str,
    path: &Path,
    interface: Option<String>,
    net: &mut Network,
) -> Result<Vec<(usize, Connection)>, NetworkError> {
    let mut out = Vec::new();
    let mut block: Option<(usize, Vec<WpaField>)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((start, fields)) = block.as_mut() {
            if trimmed == "}" {
                let (start, fields) = (*start, std::mem::take(fields));
                block = None;
                if let Some(c) = wpa_network(start, &fields, path, interface.clone(), net)? {
                    out.push((start, c));
                }
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(NetworkError::syntax(
                    path,
                    line,
                    "expected key=value or `}`",
                ));
            };
            if key.trim() == "network" {
                return Err(NetworkError::syntax(
                    path,
                    line,
                    format!("network block opened at line {start} is not closed"),
                ));
            }
            fields.push((line, key.trim().to_string(), value.trim().to_string()));
            continue;
        }
        match trimmed.split_once('=') {
            Some((key, value)) if key.trim() == "network" => {
                if value.trim() != "{" {
                    return Err(NetworkError::syntax(path, line, "expected `network={`"));
                }
                block = Some((line, Vec::new()));
            }
            // Global settings (ctrl_interface, country, update_config...)
            // belong to the daemon, not to a connection.
            Some(_) => {}
            None => return Err(NetworkError::syntax(path, line, "expected key=value")),
        }
    }
    if let Some((start, _)) = block {
        return Err(NetworkError::syntax(
            path,
            start,
            "network block is not closed",
        ));
    }
    Ok(out)
}

/// One `key=value` of a network block, with its line.
type WpaField = (usize, String, String);

/// A wpa_supplicant string: `"text"`, or hex bytes; `P"..."` is refused.
fn wpa_string(value: &str) -> Result<Vec<u8>, String> {
    if let Some(inner) = value.strip_prefix('"') {
        let Some(inner) = inner.strip_suffix('"') else {
            return Err(format!("unterminated quoted string {value:?}"));
        };
        return Ok(inner.as_bytes().to_vec());
    }
    if !value.len().is_multiple_of(2) || !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "expected a quoted string or hex bytes, got {value:?}"
        ));
    }
    (0..value.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&value[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

fn wpa_network(
    start: usize,
    fields: &[WpaField],
    path: &Path,
    interface: Option<String>,
    net: &mut Network,
) -> Result<Option<Connection>, NetworkError> {
    let mut ssid = None;
    let mut psk = None;
    let mut key_mgmt = None;
    let mut hidden = false;
    let mut priority = 0;
    let mut autoconnect = true;
    for (line, key, value) in fields {
        let bad = |m: String| NetworkError::syntax(path, *line, m);
        match key.as_str() {
            "ssid" => {
                let bytes = wpa_string(value).map_err(bad)?;
                match String::from_utf8(bytes) {
                    Ok(s) if s.chars().any(char::is_control) => {
                        net.warn(
                            path,
                            start,
                            "a network whose SSID holds control characters is not carried",
                        );
                        return Ok(None);
                    }
                    Ok(s) if !s.is_empty() && s.len() <= 32 => ssid = Some(s),
                    Ok(_) => return Err(bad("an SSID is 1 to 32 bytes".into())),
                    Err(_) => {
                        net.warn(
                            path,
                            start,
                            "a network whose SSID is not UTF-8 is not carried",
                        );
                        return Ok(None);
                    }
                }
            }
            "psk" => {
                let key = if value.starts_with('"') {
                    let bytes = wpa_string(value).map_err(bad)?;
                    String::from_utf8(bytes).map_err(|_| bad("psk is not UTF-8".into()))?
                } else {
                    value.clone()
                };
                check_psk(&key).map_err(bad)?;
                psk = Some(key);
            }
            "key_mgmt" => key_mgmt = Some(value.clone()),
            "scan_ssid" => hidden = value == "1",
            "priority" => {
                priority = value
                    .parse()
                    .map_err(|_| bad(format!("bad priority {value:?}")))?
            }
            "disabled" => autoconnect = value != "1",
            "id_str" | "mode" | "frequency" | "proto" | "pairwise" | "group" | "ieee80211w" => {}
            k if k.starts_with("wep_key") || k == "auth_alg" => {
                net.warn(path, start, "a WEP network is not carried");
                return Ok(None);
            }
            "eap" | "identity" | "password" | "ca_cert" | "client_cert" | "private_key"
            | "phase1" | "phase2" | "anonymous_identity" => {
                net.warn(path, start, "an 802.1X (EAP) network is not carried");
                return Ok(None);
            }
            other => net.warn(path, *line, format!("setting {other:?} is not carried")),
        }
    }
    let Some(ssid) = ssid else {
        return Err(NetworkError::syntax(
            path,
            start,
            "network block has no ssid",
        ));
    };
    let methods: Vec<&str> = key_mgmt
        .as_deref()
        .map_or_else(|| vec!["WPA-PSK"], |k| k.split_whitespace().collect());
    let security = if methods.contains(&"WPA-PSK") || methods.contains(&"WPA-PSK-SHA256") {
        match psk {
            Some(psk) => Security::WpaPsk(psk),
            None => {
                return Err(NetworkError::syntax(
                    path,
                    start,
                    "WPA-PSK network without psk (open networks say key_mgmt=NONE)",
                ))
            }
        }
    } else if methods == ["NONE"] {
        Security::Open
    } else {
        net.warn(
            path,
            start,
            format!(
                "network {ssid:?} with key_mgmt={} is not carried",
                methods.join(" ")
            ),
        );
        return Ok(None);
    };
    Ok(Some(Connection {
        id: ssid.clone(),
        interface,
        kind: Kind::Wifi(Wifi {
            ssid,
            security,
            hidden,
        }),
        autoconnect,
        priority,
        ipv4: Ipv4::dhcp(),
        keyfile: None,
    }))
}

// ------------------------------------------------------------------ keyfile

/// A NetworkManager keyfile (GKeyFile INI): sections of `key=value` pairs in
/// file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyfile {
    pub sections: Vec<(String, Vec<(String, String)>)>,
}

impl Keyfile {
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(s, _)| s == section)
            .flat_map(|(_, kv)| kv.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, section: &str, key: &str, value: impl Into<String>) {
        let index = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        self.sections[index].1.push((key.to_string(), value.into()));
    }

    /// The INI text, one blank line between sections.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, (section, pairs)) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in pairs {
                out.push_str(&format!("{k}={v}\n"));
            }
        }
        out
    }
}

/// Reads keyfile text: `[section]` headers, `key=value` lines, `#` or `;`
/// comments. A key outside a section, a line without `=`, or a bad header
/// is an error at its line.
pub fn parse_keyfile(text: &str, path: &Path) -> Result<Keyfile, NetworkError> {
    let mut keyfile = Keyfile::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(name) = header.strip_suffix(']') else {
                return Err(NetworkError::syntax(
                    path,
                    line,
                    "section header without `]`",
                ));
            };
            if name.is_empty() || name.contains(['[', ']']) {
                return Err(NetworkError::syntax(path, line, "bad section name"));
            }
            keyfile.sections.push((name.to_string(), Vec::new()));
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(NetworkError::syntax(path, line, "expected key=value"));
        };
        let Some((_, pairs)) = keyfile.sections.last_mut() else {
            return Err(NetworkError::syntax(path, line, "key before any [section]"));
        };
        if key.trim().is_empty() {
            return Err(NetworkError::syntax(path, line, "empty key"));
        }
        pairs.push((key.trim().to_string(), value.trim_start().to_string()));
    }
    Ok(keyfile)
}

/// The model's reading of a keyfile. The keyfile itself is kept and written
/// back as it was; the reading needs `[connection] id` and `type`.
///
/// `text` is the keyfile's text, used only to name the line of a bad value
/// (the first line setting the key; line 1 for a missing key).
pub fn connection_from_keyfile(
    keyfile: &Keyfile,
    text: &str,
    path: &Path,
) -> Result<Connection, NetworkError> {
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
            .map_or(1, |i| i + 1)
    };
    let need = |section: &str, key: &str| {
        keyfile
            .get(section, key)
            .map(str::to_string)
            .ok_or_else(|| {
                NetworkError::syntax(path, 1, format!("keyfile has no {key} in [{section}]"))
            })
    };
    let bad_at = |key: &str, m: String| NetworkError::syntax(path, line_of(key), m);
    let id = keyfile_unescape(&need("connection", "id")?);
    let kind_name = need("connection", "type")?;
    let kind = match kind_name.as_str() {
        "ethernet" | "802-3-ethernet" => Kind::Ethernet,
        "wifi" | "802-11-wireless" => {
            let ssid = keyfile
                .get("wifi", "ssid")
                .or_else(|| keyfile.get("802-11-wireless", "ssid"))
                .ok_or_else(|| bad_at("ssid", "wifi keyfile has no ssid".into()))?;
            let security = match keyfile
                .get("wifi-security", "key-mgmt")
                .or_else(|| keyfile.get("802-11-wireless-security", "key-mgmt"))
            {
                None => Security::Open,
                Some("wpa-psk") => Security::WpaPsk(keyfile_unescape(
                    keyfile
                        .get("wifi-security", "psk")
                        .or_else(|| keyfile.get("802-11-wireless-security", "psk"))
                        .unwrap_or_default(),
                )),
                Some(other) => Security::Other(other.to_string()),
            };
            Kind::Wifi(Wifi {
                ssid: keyfile_unescape(ssid),
                security,
                hidden: keyfile.get("wifi", "hidden") == Some("true"),
            })
        }
        other => Kind::Other(other.to_string()),
    };
    let method = match keyfile.get("ipv4", "method") {
        None | Some("auto") => Method::Dhcp,
        Some("manual") => Method::Static,
        Some(_) => Method::Disabled,
    };
    let mut ipv4 = Ipv4 {
        method,
        ..Ipv4::dhcp()
    };
    let mut ipv6_dns: Vec<IpAddr> = Vec::new();
    for (section, pairs) in &keyfile.sections {
        if section == "ipv6" {
            for (key, value) in pairs.iter().filter(|(k, _)| k == "dns") {
                for ip in value.split(';').filter(|s| !s.is_empty()) {
                    let ip = ip
                        .parse()
                        .map_err(|_| bad_at(key, format!("bad dns {ip:?}")))?;
                    ipv6_dns.push(ip);
                }
            }
        }
        if section != "ipv4" {
            continue;
        }
        for (key, value) in pairs {
            let numbered = |prefix: &str| {
                key.strip_prefix(prefix)
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            };
            if numbered("address") {
                let (cidr, gw) = value
                    .split_once(',')
                    .map_or((value.as_str(), None), |(a, g)| (a, Some(g)));
                let cidr = Cidr::parse(cidr)
                    .ok_or_else(|| bad_at(key, format!("bad address {value:?}")))?;
                ipv4.addresses.push(cidr);
                if let Some(gw) = gw {
                    ipv4.gateway = Some(
                        gw.parse()
                            .map_err(|_| bad_at(key, format!("bad gateway {value:?}")))?,
                    );
                }
            } else if numbered("route") && !key.contains('_') {
                let mut parts = value.split(',');
                let dest = parts.next().and_then(Cidr::parse);
                let dest = dest.ok_or_else(|| bad_at(key, format!("bad route {value:?}")))?;
                let via = match parts.next().filter(|v| !v.is_empty()) {
                    Some(v) => Some(
                        v.parse()
                            .map_err(|_| bad_at(key, format!("bad route {value:?}")))?,
                    ),
                    None => None,
                };
                let metric = match parts.next().filter(|v| !v.is_empty()) {
                    Some(m) => Some(
                        m.parse()
                            .map_err(|_| bad_at(key, format!("bad route {value:?}")))?,
                    ),
                    None => None,
                };
                ipv4.routes.push(Route { dest, via, metric });
            } else if key == "gateway" {
                ipv4.gateway = Some(
                    value
                        .parse()
                        .map_err(|_| bad_at(key, format!("bad gateway {value:?}")))?,
                );
            } else if key == "dns" {
                for ip in value.split(';').filter(|s| !s.is_empty()) {
                    ipv4.dns.push(
                        ip.parse()
                            .map_err(|_| bad_at(key, format!("bad dns {ip:?}")))?,
                    );
                }
            } else if key == "dns-search" {
                ipv4.dns_search.extend(
                    value
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    ipv4.dns.extend(ipv6_dns);
    let priority = match keyfile.get("connection", "autoconnect-priority") {
        Some(p) => p.parse().map_err(|_| {
            bad_at(
                "autoconnect-priority",
                format!("bad autoconnect-priority {p:?}"),
            )
        })?,
        None => 0,
    };
    Ok(Connection {
        id,
        interface: keyfile
            .get("connection", "interface-name")
            .map(keyfile_unescape),
        kind,
        autoconnect: keyfile.get("connection", "autoconnect") != Some("false"),
        priority,
        ipv4,
        keyfile: Some(keyfile.clone()),
    })
}

/// The keyfile for a connection: its own when it came from one, else built
/// from the model.
pub fn to_keyfile(connection: &Connection) -> Keyfile {
    if let Some(keyfile) = &connection.keyfile {
        return keyfile.clone();
    }
    let mut k = Keyfile::default();
    k.set("connection", "id", keyfile_escape(&connection.id));
    k.set("connection", "uuid", connection.uuid());
    let kind = match &connection.kind {
        Kind::Ethernet => "ethernet".to_string(),
        Kind::Wifi(_) => "wifi".to_string(),
        Kind::Other(other) => other.clone(),
    };
    k.set("connection", "type", kind);
    if let Some(interface) = &connection.interface {
        k.set("connection", "interface-name", keyfile_escape(interface));
    }
    k.set(
        "connection",
        "autoconnect",
        connection.autoconnect.to_string(),
    );
    if connection.priority != 0 {
        k.set(
            "connection",
            "autoconnect-priority",
            connection.priority.to_string(),
        );
    }
    match &connection.kind {
        Kind::Ethernet => k.sections.push(("ethernet".into(), Vec::new())),
        Kind::Wifi(wifi) => {
            k.set("wifi", "mode", "infrastructure");
            k.set("wifi", "ssid", keyfile_escape(&wifi.ssid));
            if wifi.hidden {
                k.set("wifi", "hidden", "true");
            }
            if let Security::WpaPsk(psk) = &wifi.security {
                k.set("wifi-security", "key-mgmt", "wpa-psk");
                k.set("wifi-security", "psk", keyfile_escape(psk));
            }
        }
        Kind::Other(_) => {}
    }
    let ipv4 = &connection.ipv4;
    let method = match ipv4.method {
        Method::Dhcp => "auto",
        Method::Static => "manual",
        Method::Disabled => "disabled",
    };
    k.set("ipv4", "method", method);
    for (i, address) in ipv4.addresses.iter().enumerate() {
        let value = match (i, ipv4.gateway) {
            (0, Some(gw)) => format!("{address},{gw}"),
            _ => address.to_string(),
        };
        k.set("ipv4", &format!("address{}", i + 1), value);
    }
    if ipv4.addresses.is_empty() {
        if let Some(gw) = ipv4.gateway {
            k.set("ipv4", "gateway", gw.to_string());
        }
    }
    // NetworkManager takes IPv4 name servers in [ipv4], IPv6 ones in [ipv6].
    let servers = |v6: bool| -> String {
        let list = ipv4.dns.iter().filter(|d| d.is_ipv6() == v6);
        list.map(|d| format!("{d};")).collect()
    };
    if !servers(false).is_empty() {
        k.set("ipv4", "dns", servers(false));
    }
    if !ipv4.dns_search.is_empty() {
        let search: Vec<String> = ipv4.dns_search.iter().map(|d| format!("{d};")).collect();
        k.set("ipv4", "dns-search", search.concat());
    }
    for (i, route) in ipv4.routes.iter().enumerate() {
        let mut value = route.dest.to_string();
        match (route.via, route.metric) {
            (Some(via), Some(m)) => value.push_str(&format!(",{via},{m}")),
            (Some(via), None) => value.push_str(&format!(",{via}")),
            (None, Some(m)) => value.push_str(&format!(",,{m}")),
            (None, None) => {}
        }
        k.set("ipv4", &format!("route{}", i + 1), value);
    }
    // The old OS configured no IPv6 (inet6 is not carried) but its kernel
    // took router advertisements by default: auto keeps that behaviour.
    k.set("ipv6", "method", "auto");
    if !servers(true).is_empty() {
        k.set("ipv6", "dns", servers(true));
    }
    k
}

/// GKeyFile string escapes for the characters that would change the line's
/// meaning; `;` is a list separator only in list values, which SSIDs and
/// keys are not.
fn keyfile_escape(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Spaces at either end would be taken for padding around the value.
            ' ' if i == 0 || i == last => out.push_str("\\s"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`keyfile_escape`].
pub fn keyfile_unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('s') => out.push(' '),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The keyfile name for a connection id: NetworkManager reads any name
/// ending in `.nmconnection`; `/`, control characters and a leading dot
/// (hidden files are ignored) are replaced by `_`.
pub fn file_name(id: &str) -> String {
    let mut name: String = id
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    if name.starts_with('.') || name.is_empty() {
        name.insert(0, '_');
    }
    format!("{name}.nmconnection")
}

/// Writes every connection as `<dir>/<name>.nmconnection`, mode 0600 (NetworkManager
/// ignores keyfiles others can read), each atomically. Two ids that map to
/// one file name get the uuid appended to the second. Returns the paths.
pub fn write_keyfiles(
    connections: &[Connection],
    dir: &Path,
) -> Result<Vec<PathBuf>, NetworkError> {
    fs::create_dir_all(dir).map_err(|e| NetworkError::io(dir, e))?;
    let mut written = Vec::new();
    let mut names = BTreeSet::new();
    for connection in connections {
        let mut name = file_name(&connection.id);
        if !names.insert(name.clone()) {
            name = file_name(&format!("{}-{}", connection.id, connection.uuid()));
            names.insert(name.clone());
        }
        let keyfile = to_keyfile(connection);
        written.push(write_private(
            dir,
            &name,
            keyfile.render().as_bytes(),
            0o600,
        )?);
    }
    Ok(written)
}

/// Writes `dir/name` atomically with `mode`, never readable by others in
/// between: the file is written (ferry_journal::write_atomic) in a private
/// 0700 staging directory inside `dir`, given its mode there, then renamed
/// into place (same filesystem) and the directory synced.
pub(crate) fn write_private(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<PathBuf, NetworkError> {
    let staging = dir.join(format!(".ferry-staging-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| NetworkError::io(&path, e)
    };
    match fs::DirBuilder::new().mode(0o700).create(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(NetworkError::io(&staging, e)),
    }
    let staged = staging.join(name);
    let target = dir.join(name);
    let result = ferry_journal::write_atomic(&staged, bytes)
        .map_err(io(&staged))
        .and_then(|()| {
            fs::set_permissions(&staged, fs::Permissions::from_mode(mode)).map_err(io(&staged))
        })
        .and_then(|()| fs::rename(&staged, &target).map_err(io(&target)))
        .and_then(|()| {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))
        });
    let _ = fs::remove_file(&staged);
    let _ = fs::remove_dir(&staging);
    result.map(|()| target)
}

/// Reads keyfiles written by [`write_keyfiles`] back into connections (the
/// round trip the tests check), in file name order.
pub fn read_keyfiles(dir: &Path) -> Result<Vec<Connection>, NetworkError> {
    let mut out = Vec::new();
    for path in list_dir(dir, |n| n.ends_with(".nmconnection"))? {
        let text = read_text(&path)?;
        let keyfile = parse_keyfile(&text, &path)?;
        out.push(connection_from_keyfile(&keyfile, &text, &path)?);
    }
    Ok(out)
}
