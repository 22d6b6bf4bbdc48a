//! `os-release`: which operating system and release a root holds, read per
//! the freedesktop specification — `KEY=value` lines, single or double
//! quotes, shell-style backslash escapes, `#` comments and blank lines —
//! from `/etc/os-release`, else `/usr/lib/os-release`, under a given root.
//!
//! Not a shell: nothing is expanded. What a shell would expand (an unescaped
//! `$` or backtick, concatenated quotes, a value running over several lines)
//! is an error with its line and column, since its meaning would depend on
//! the shell reading it.

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The fields of an os-release file, in file order. When a key repeats, the
/// last value counts, as when a shell sources the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsRelease {
    entries: Vec<(String, String)>,
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message} (expected {expected})")]
pub struct OsReleaseSyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub expected: &'static str,
}

/// An os-release that could not be read from a root.
#[derive(Debug, thiserror::Error)]
pub enum OsReleaseError {
    #[error("{root}: neither etc/os-release nor usr/lib/os-release exists")]
    NotFound { root: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Syntax {
        path: PathBuf,
        #[source]
        source: OsReleaseSyntaxError,
    },
}

/// Where the specification says to look, in order.
const LOCATIONS: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Symlinks followed before giving up, as Linux's `ELOOP` limit.
const MAX_SYMLINKS: usize = 40;

impl OsRelease {
    /// Parses the text of an os-release file. Never panics.
    pub fn parse(text: &str) -> Result<OsRelease, OsReleaseSyntaxError> {
        let mut entries = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            if let Some(entry) = parse_line(line, index + 1)? {
                entries.push(entry);
            }
        }
        Ok(OsRelease { entries })
    }

    /// Reads the os-release of the system mounted at `root` (`/` for this
    /// one). Symlinks — `/etc/os-release` usually is one — are resolved
    /// inside `root`, so an absolute link target does not escape to the
    /// host's file.
    pub fn read(root: &Path) -> Result<OsRelease, OsReleaseError> {
        for location in LOCATIONS {
            let shown = root.join(location.trim_start_matches('/'));
            let io_error = |source| OsReleaseError::Io {
                path: shown.clone(),
                source,
            };
            let Some(path) = resolve_in_root(root, Path::new(location)).map_err(io_error)? else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(io_error)?;
            return OsRelease::parse(&text).map_err(|source| OsReleaseError::Syntax {
                path: shown,
                source,
            });
        }
        Err(OsReleaseError::NotFound {
            root: root.to_path_buf(),
        })
    }

    /// The value of any key, known to this type or not.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All fields in file order, repeated keys included.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `ID`, e.g. `debian`, `ubuntu`, `raspbian`; the specification's default
    /// when absent is `linux`.
    pub fn id(&self) -> Option<&str> {
        self.get("ID")
    }

    /// `ID_LIKE`: the distributions this one derives from, closest first.
    pub fn id_like(&self) -> Vec<&str> {
        self.get("ID_LIKE")
            .map(|v| v.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    pub fn name(&self) -> Option<&str> {
        self.get("NAME")
    }

    pub fn pretty_name(&self) -> Option<&str> {
        self.get("PRETTY_NAME")
    }

    /// `VERSION_ID`, e.g. `12` or `24.04`.
    pub fn version_id(&self) -> Option<&str> {
        self.get("VERSION_ID")
    }

    /// `VERSION_CODENAME`, e.g. `bookworm` or `noble`.
    pub fn version_codename(&self) -> Option<&str> {
        self.get("VERSION_CODENAME")
    }

    /// `VERSION`, e.g. `12 (bookworm)`.
    pub fn version(&self) -> Option<&str> {
        self.get("VERSION")
    }
}

fn parse_line(line: &str, number: usize) -> Result<Option<(String, String)>, OsReleaseSyntaxError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let error = |byte: usize, message: String, expected: &'static str| OsReleaseSyntaxError {
        line: number,
        column: line
            .get(..byte)
            .map_or(1, |before| before.chars().count() + 1),
        message,
        expected,
    };
    let key_start = line.len() - line.trim_start_matches([' ', '\t']).len();
    let rest = &line[key_start..];
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }

    let key_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let key = &rest[..key_len];
    let after_key = key_start + key_len;
    if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(error(
            key_start,
            format!("`{}` does not start with a variable name", truncate(rest)),
            "`KEY=value` with a KEY of letters, digits and `_`",
        ));
    }
    if !line[after_key..].starts_with('=') {
        let message = match line[after_key..].chars().next() {
            _ if key == "export" => "`export` is not part of the os-release format".to_string(),
            None => format!("`{key}` has no `=`"),
            Some(c) if c == ' ' || c == '\t' => "space before `=`".to_string(),
            Some(c) => format!("`{c}` in a variable name"),
        };
        return Err(error(
            after_key,
            message,
            "`KEY=value` without spaces around `=`",
        ));
    }

    let value_start = after_key + 1;
    let (value, value_end) = parse_value(line, value_start, &error)?;

    let trailing = &line[value_end..];
    let comment_or_end = trailing.trim_start_matches([' ', '\t']);
    let blank_before = comment_or_end.len() < trailing.len();
    if !(comment_or_end.is_empty() || (blank_before && comment_or_end.starts_with('#'))) {
        let at = line.len() - comment_or_end.len();
        let message = if blank_before {
            format!("`{}` after the value", truncate(comment_or_end))
        } else {
            format!("`{}` joined to the value", truncate(comment_or_end))
        };
        return Err(error(
            at,
            message,
            "one value per line; quote a value that has spaces or special characters",
        ));
    }
    Ok(Some((key.to_string(), value)))
}

/// Reads the value starting at byte `start` of `line`; returns it and the
/// byte where it ends.
fn parse_value(
    line: &str,
    start: usize,
    error: &dyn Fn(usize, String, &'static str) -> OsReleaseSyntaxError,
) -> Result<(String, usize), OsReleaseSyntaxError> {
    let mut value = String::new();
    let mut chars = line[start..]
        .char_indices()
        .map(|(i, c)| (start + i, c))
        .peekable();
    match chars.peek().copied() {
        Some((open, '\'')) => {
            chars.next();
            for (at, c) in chars {
                if c == '\'' {
                    return Ok((value, at + 1));
                }
                value.push(c);
            }
            Err(error(
                open,
                "single quote not closed on this line".into(),
                "a closing `'`",
            ))
        }
        Some((open, '"')) => {
            chars.next();
            while let Some((at, c)) = chars.next() {
                match c {
                    '"' => return Ok((value, at + 1)),
                    '\\' => match chars.next() {
                        Some((_, escaped @ ('$' | '"' | '\\' | '`'))) => value.push(escaped),
                        // Inside double quotes a shell keeps the backslash
                        // before any other character.
                        Some((_, other)) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => {
                            return Err(error(
                                at,
                                "backslash at the end of the line".into(),
                                "the value and its closing `\"` on one line",
                            ))
                        }
                    },
                    '$' | '`' => {
                        return Err(error(
                            at,
                            format!("unescaped `{c}` would be expanded by a shell"),
                            "`\\$` or `\\``",
                        ))
                    }
                    _ => value.push(c),
                }
            }
            Err(error(
                open,
                "double quote not closed on this line".into(),
                "a closing `\"`",
            ))
        }
        _ => {
            while let Some(&(at, c)) = chars.peek() {
                match c {
                    ' ' | '\t' => return Ok((value, at)),
                    '\\' => {
                        chars.next();
                        match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => {
                                return Err(error(
                                    at,
                                    "backslash at the end of the line".into(),
                                    "the whole value on one line",
                                ))
                            }
                        }
                    }
                    '"' | '\'' | '$' | '`' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                        return Err(error(
                            at,
                            format!("`{c}` in an unquoted value"),
                            "a value in quotes when it has special characters",
                        ))
                    }
                    '~' if at == start => {
                        return Err(error(
                            at,
                            "unquoted `~` would be expanded by a shell".into(),
                            "a value in quotes when it has special characters",
                        ))
                    }
                    _ => {
                        chars.next();
                        value.push(c);
                    }
                }
            }
            Ok((value, line.len()))
        }
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// One step of a path being resolved.
enum Step {
    Up,
    Name(OsString),
}

fn steps(path: &Path) -> impl DoubleEndedIterator<Item = Step> + '_ {
    path.components().filter_map(|c| match c {
        Component::ParentDir => Some(Step::Up),
        Component::Normal(name) => Some(Step::Name(name.to_os_string())),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// Where `path` (absolute, as seen from inside `root`) really is, following
/// symlinks as if `root` were `/`; `None` when it does not exist.
fn resolve_in_root(root: &Path, path: &Path) -> io::Result<Option<PathBuf>> {
    let mut pending: Vec<Step> = steps(path).rev().collect();
    let mut resolved = root.to_path_buf();
    let mut depth = 0usize;
    let mut links_followed = 0usize;
    while let Some(step) = pending.pop() {
        let name = match step {
            Step::Up => {
                // `..` at the top of the root stays there, as at `/`.
                if depth > 0 {
                    resolved.pop();
                    depth -= 1;
                }
                continue;
            }
            Step::Name(name) => name,
        };
        let candidate = resolved.join(&name);
        let metadata = match std::fs::symlink_metadata(&candidate) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if metadata.file_type().is_symlink() {
            links_followed += 1;
            if links_followed > MAX_SYMLINKS {
                return Err(io::Error::other(format!(
                    "{}: too many levels of symbolic links",
                    candidate.display()
                )));
            }
            let target = std::fs::read_link(&candidate)?;
            if target.is_absolute() {
                resolved = root.to_path_buf();
                depth = 0;
            }
            pending.extend(steps(&target).rev());
        } else {
            resolved = candidate;
            depth += 1;
        }
    }
    Ok(Some(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_escapes() {
        let text = "# comment\n\nA=plain\nB=\"two words\"\nC='single $x'\nD=\"esc \\$ \\\" \\\\ \\` \\n\"\nE=\nF=a\\ b  # trailing comment\n  G=indented\r\n";
        let os = OsRelease::parse(text).unwrap();
        assert_eq!(os.get("A"), Some("plain"));
        assert_eq!(os.get("B"), Some("two words"));
        assert_eq!(os.get("C"), Some("single $x"));
        assert_eq!(os.get("D"), Some("esc $ \" \\ ` \\n"));
        assert_eq!(os.get("E"), Some(""));
        assert_eq!(os.get("F"), Some("a b"));
        assert_eq!(os.get("G"), Some("indented"));
    }

    #[test]
    fn last_assignment_wins() {
        let os = OsRelease::parse("ID=a\nID=b\n").unwrap();
        assert_eq!(os.id(), Some("b"));
        assert_eq!(os.entries().count(), 2);
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("NAME=Debian GNU", 1, 13),
            ("X=1\nNAME = x", 2, 5),
            ("ID=\"open", 1, 4),
            ("ID='open", 1, 4),
            ("ID=\"a\"'b'", 1, 7),
            ("ID=\"$HOME\"", 1, 5),
            ("ID=a;b", 1, 5),
            ("export ID=x", 1, 7),
            ("1D=x", 1, 1),
            ("ÄD=x", 1, 1),
            ("ID=x\\", 1, 5),
        ];
        for (text, line, column) in cases {
            let e = OsRelease::parse(text).unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{text:?}: {e}");
        }
    }
}
