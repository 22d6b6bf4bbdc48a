//! Package relation fields: Depends, Pre-Depends, Recommends, Suggests,
//! Conflicts, Breaks, Replaces, Provides, Enhances and Build-Depends*.
//!
//! `a (>= 1.0) | b:any [amd64 !i386] <!nocheck> <stage1 cross>, c` is an AND
//! of OR-groups of atoms; everything borrows from the field's text. Not for
//! deciding which package satisfies an atom: that needs a universe of
//! packages and lives in the solver.

use std::cmp::Ordering;
use std::fmt;

use crate::version::VersionRef;

/// A version operator of a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RelOp {
    #[serde(rename = "<<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">>")]
    Gt,
}

impl RelOp {
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            RelOp::Lt => ordering == Ordering::Less,
            RelOp::Le => ordering != Ordering::Greater,
            RelOp::Eq => ordering == Ordering::Equal,
            RelOp::Ge => ordering != Ordering::Less,
            RelOp::Gt => ordering == Ordering::Greater,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RelOp::Lt => "<<",
            RelOp::Le => "<=",
            RelOp::Eq => "=",
            RelOp::Ge => ">=",
            RelOp::Gt => ">>",
        }
    }
}

/// `(op version)` of an atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Constraint<'a> {
    pub op: RelOp,
    pub version: VersionRef<'a>,
}

impl Constraint<'_> {
    /// Whether a package of version `candidate` satisfies this constraint.
    pub fn allows(&self, candidate: &VersionRef<'_>) -> bool {
        self.op.holds(candidate.cmp(&self.version))
    }
}

/// One term of a restriction list: `amd64`, `!i386`, `nocheck`, `!stage1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term<'a> {
    pub negated: bool,
    pub name: &'a str,
}

/// One package reference: `name[:arch] [(op version)] [[arches]] [<profiles>…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom<'a> {
    pub name: &'a str,
    /// `any`, `native` or an architecture name, after the `:`.
    pub arch_qualifier: Option<&'a str>,
    pub constraint: Option<Constraint<'a>>,
    /// `[arch]` and `<profile>` lists, boxed: they are rare outside Sources
    /// files, and every atom of an archive would pay for their size.
    pub restrictions: Option<Box<Restrictions<'a>>>,
}

/// The restriction lists of an atom.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restrictions<'a> {
    /// `[amd64 !i386]`: the architectures where this atom applies.
    pub arches: Vec<Term<'a>>,
    /// `<!nocheck> <stage1 cross>`: an OR of AND-lists of build profiles.
    pub profiles: Vec<Vec<Term<'a>>>,
}

impl<'a> Atom<'a> {
    pub fn arches(&self) -> &[Term<'a>] {
        self.restrictions.as_deref().map_or(&[], |r| &r.arches)
    }

    pub fn profiles(&self) -> &[Vec<Term<'a>>] {
        self.restrictions.as_deref().map_or(&[], |r| &r.profiles)
    }

    /// Whether the `[arch]` restriction (if any) keeps this atom on `arch`.
    pub fn applies_on(&self, arch: &str) -> bool {
        let arches = self.arches();
        if arches.is_empty() {
            return true;
        }
        let negated = arches[0].negated;
        let matched = arches.iter().any(|t| arch_matches(t.name, arch));
        matched != negated
    }

    /// Whether the profile restriction keeps this atom with `active` profiles.
    pub fn applies_with_profiles(&self, active: &[&str]) -> bool {
        self.profiles().is_empty()
            || self
                .profiles()
                .iter()
                .any(|all| all.iter().all(|t| active.contains(&t.name) != t.negated))
    }
}

impl fmt::Display for Atom<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if let Some(q) = self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({} {})", c.op.as_str(), c.version)?;
        }
        if !self.arches().is_empty() {
            f.write_str(" [")?;
            write_terms(f, self.arches())?;
            f.write_str("]")?;
        }
        for list in self.profiles() {
            f.write_str(" <")?;
            write_terms(f, list)?;
            f.write_str(">")?;
        }
        Ok(())
    }
}

fn write_terms(f: &mut fmt::Formatter<'_>, terms: &[Term<'_>]) -> fmt::Result {
    for (i, t) in terms.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        if t.negated {
            f.write_str("!")?;
        }
        f.write_str(t.name)?;
    }
    Ok(())
}

/// An AND of OR-groups: `a | b, c`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relations<'a> {
    pub groups: Vec<Vec<Atom<'a>>>,
}

impl<'a> Relations<'a> {
    pub fn parse(text: &'a str) -> Result<Self, RelationError> {
        Parser { text, pos: 0 }.relations()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every atom of every group, for fields where `|` has no meaning
    /// (Conflicts, Breaks, Provides).
    pub fn atoms(&self) -> impl Iterator<Item = &Atom<'a>> {
        self.groups.iter().flatten()
    }
}

impl fmt::Display for Relations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.groups.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            for (j, atom) in group.iter().enumerate() {
                if j > 0 {
                    f.write_str(" | ")?;
                }
                write!(f, "{atom}")?;
            }
        }
        Ok(())
    }
}

/// A malformed relation field, at a byte offset of the field's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset}: {message} (expected {expected})")]
pub struct RelationError {
    pub offset: usize,
    pub message: String,
    pub expected: &'static str,
}

/// Multi-Arch values of a binary package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

impl MultiArch {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim() {
            "no" => MultiArch::No,
            "same" => MultiArch::Same,
            "foreign" => MultiArch::Foreign,
            "allowed" => MultiArch::Allowed,
            _ => return None,
        })
    }
}

/// dpkg's architecture wildcards: `any`, `linux-any`, `any-amd64`, exact names.
/// Debian architectures without an OS prefix (amd64, arm64…) are Linux ones.
pub fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == arch || pattern == "any" {
        return true;
    }
    let (os, cpu) = split_arch(arch);
    match pattern.split_once('-') {
        Some(("any", p_cpu)) => p_cpu == cpu || p_cpu == "any",
        Some((p_os, "any")) => p_os == os,
        _ => false,
    }
}

fn split_arch(arch: &str) -> (&str, &str) {
    match arch.split_once('-') {
        Some((os, cpu)) => (os, cpu),
        None => ("linux", arch),
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

fn is_name_end(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'[' | b']' | b'<' | b'>' | b',' | b'|' | b':'
    )
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn err(&self, message: impl Into<String>, expected: &'static str) -> RelationError {
        RelationError {
            offset: self.pos,
            message: message.into(),
            expected,
        }
    }

    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            Some(c) => format!("found `{c}`"),
            None => "found the end of the field".to_string(),
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), RelationError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(self.found(), expected))
        }
    }

    fn word(&mut self, expected: &'static str) -> Result<&'a str, RelationError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_name_end(b) {
                break;
            }
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err(self.found(), expected));
        }
        Ok(&self.text[start..self.pos])
    }

    fn relations(mut self) -> Result<Relations<'a>, RelationError> {
        let mut groups = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None => break,
                // Empty groups (`a, , b` or a trailing comma) are tolerated,
                // as APT and dpkg-source tolerate them.
                Some(b',') => {
                    self.pos += 1;
                    continue;
                }
                _ => {}
            }
            groups.push(self.group()?);
            self.skip_ws();
            match self.peek() {
                None => break,
                Some(b',') => self.pos += 1,
                _ => return Err(self.err(self.found(), "`,` or `|` between relations")),
            }
        }
        Ok(Relations { groups })
    }

    fn group(&mut self) -> Result<Vec<Atom<'a>>, RelationError> {
        let mut atoms = vec![self.atom()?];
        loop {
            self.skip_ws();
            if self.peek() != Some(b'|') {
                return Ok(atoms);
            }
            self.pos += 1;
            self.skip_ws();
            atoms.push(self.atom()?);
        }
    }

    fn atom(&mut self) -> Result<Atom<'a>, RelationError> {
        let name = self.word("a package name")?;
        let mut atom = Atom {
            name,
            arch_qualifier: None,
            constraint: None,
            restrictions: None,
        };
        if self.peek() == Some(b':') {
            self.pos += 1;
            atom.arch_qualifier = Some(self.word("`any`, `native` or an architecture after `:`")?);
        }
        self.skip_ws();
        if self.peek() == Some(b'(') {
            self.pos += 1;
            atom.constraint = Some(self.constraint()?);
            self.skip_ws();
        }
        if self.peek() == Some(b'[') {
            self.pos += 1;
            let arches = self.terms(b']', "an architecture or `]`")?;
            atom.restrictions
                .get_or_insert_with(Default::default)
                .arches = arches;
            self.skip_ws();
        }
        while self.peek() == Some(b'<') {
            self.pos += 1;
            let profiles = self.terms(b'>', "a build profile or `>`")?;
            atom.restrictions
                .get_or_insert_with(Default::default)
                .profiles
                .push(profiles);
            self.skip_ws();
        }
        Ok(atom)
    }

    fn constraint(&mut self) -> Result<Constraint<'a>, RelationError> {
        self.skip_ws();
        let rest = &self.text.as_bytes()[self.pos..];
        let (op, len) = match rest {
            [b'<', b'<', ..] => (RelOp::Lt, 2),
            [b'<', b'=', ..] => (RelOp::Le, 2),
            [b'>', b'>', ..] => (RelOp::Gt, 2),
            [b'>', b'=', ..] => (RelOp::Ge, 2),
            [b'=', ..] => (RelOp::Eq, 1),
            // Obsolete `<` and `>` mean `<=` and `>=`, as in dpkg.
            [b'<', ..] => (RelOp::Le, 1),
            [b'>', ..] => (RelOp::Ge, 1),
            _ => return Err(self.err(self.found(), "a version operator (<< <= = >= >>)")),
        };
        self.pos += len;
        self.skip_ws();
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b')' || b.is_ascii_whitespace() {
                break;
            }
            self.pos += 1;
        }
        let text = &self.text[start..self.pos];
        let version = VersionRef::split(text).map_err(|e| RelationError {
            offset: start,
            message: format!("bad version `{text}`: {e}"),
            expected: "a Debian version",
        })?;
        self.skip_ws();
        self.expect(b')', "`)` after the version")?;
        Ok(Constraint { op, version })
    }

    fn terms(&mut self, close: u8, expected: &'static str) -> Result<Vec<Term<'a>>, RelationError> {
        let mut terms = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b) if b == close => {
                    self.pos += 1;
                    if terms.is_empty() {
                        return Err(self.err("empty restriction list", expected));
                    }
                    return Ok(terms);
                }
                None => return Err(self.err(self.found(), expected)),
                _ => {}
            }
            let negated = self.peek() == Some(b'!');
            if negated {
                self.pos += 1;
            }
            let name = self.word(expected)?;
            terms.push(Term { negated, name });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alternatives_constraints_qualifiers_and_restrictions() {
        let r = Relations::parse(
            "libc6 (>= 2.36), foo:any | bar (<<2~) [amd64 !i386] <!nocheck> <stage1 cross>,\n python3:native",
        )
        .unwrap();
        assert_eq!(r.groups.len(), 3);
        let c = r.groups[0][0].constraint.unwrap();
        assert_eq!(
            (c.op, c.version.to_string()),
            (RelOp::Ge, "2.36".to_string())
        );
        assert_eq!(r.groups[1][0].arch_qualifier, Some("any"));
        let bar = &r.groups[1][1];
        assert_eq!(bar.constraint.unwrap().op, RelOp::Lt);
        assert_eq!(bar.arches().len(), 2);
        assert!(bar.arches()[1].negated);
        assert_eq!(bar.profiles().len(), 2);
        assert_eq!(bar.profiles()[1].len(), 2);
        assert_eq!(r.groups[2][0].arch_qualifier, Some("native"));
        assert_eq!(
            r.to_string(),
            "libc6 (>= 2.36), foo:any | bar (<< 2~) [amd64 !i386] <!nocheck> <stage1 cross>, python3:native"
        );
    }

    #[test]
    fn obsolete_operators_and_trailing_commas() {
        let r = Relations::parse("a (< 1), b (> 2),").unwrap();
        assert_eq!(r.groups[0][0].constraint.unwrap().op, RelOp::Le);
        assert_eq!(r.groups[1][0].constraint.unwrap().op, RelOp::Ge);
        assert_eq!(r.groups.len(), 2);
        assert!(Relations::parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_point_at_the_offset() {
        let e = Relations::parse("a (>= 1.0").unwrap_err();
        assert_eq!(e.offset, 9);
        let e = Relations::parse("a (~ 1)").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(Relations::parse("a b").is_err());
        assert!(Relations::parse("a | ").is_err());
        assert!(Relations::parse("a [").is_err());
        assert!(Relations::parse("a []").is_err());
    }

    #[test]
    fn constraints_compare_like_dpkg() {
        let r = Relations::parse("a (<< 2.0~), b (= 1:1.0)").unwrap();
        let lt = r.groups[0][0].constraint.unwrap();
        assert!(lt.allows(&VersionRef::parse("1.9").unwrap()));
        assert!(!lt.allows(&VersionRef::parse("2.0").unwrap()));
        let eq = r.groups[1][0].constraint.unwrap();
        assert!(eq.allows(&VersionRef::parse("1:1.0-0").unwrap()));
    }

    #[test]
    fn arch_and_profile_restrictions() {
        let r = Relations::parse("a [linux-any], b [!amd64], c [any-arm64], d <!nocheck> <cross>")
            .unwrap();
        let atoms: Vec<_> = r.atoms().collect();
        assert!(atoms[0].applies_on("amd64"));
        assert!(!atoms[0].applies_on("hurd-i386"));
        assert!(!atoms[1].applies_on("amd64"));
        assert!(atoms[1].applies_on("i386"));
        assert!(atoms[2].applies_on("arm64"));
        assert!(!atoms[2].applies_on("amd64"));
        assert!(atoms[3].applies_with_profiles(&[]));
        assert!(!atoms[3].applies_with_profiles(&["nocheck"]));
        assert!(atoms[3].applies_with_profiles(&["nocheck", "cross"]));
    }
}
