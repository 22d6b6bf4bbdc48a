//! Building real `.deb` files with `dpkg-deb`, so a package a test installs
//! is exactly what a vendor would ship: control fields, files, conffiles and
//! maintainer scripts. Not a parser: reading debs is `ferry-deb`'s job, and
//! `dpkg-deb` itself judges whether what a test asks for is valid.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::checked;
use crate::TestkitError;

/// Starts a package description: `deb("sdk", "1.0")`, architecture `all`.
pub fn deb(name: &str, version: &str) -> DebBuilder {
    DebBuilder {
        name: name.into(),
        version: version.into(),
        arch: "all".into(),
        fields: Vec::new(),
        files: Vec::new(),
        conffiles: Vec::new(),
        scripts: Vec::new(),
    }
}

/// A `.deb` to build; every setter returns the builder.
#[derive(Clone, Debug)]
pub struct DebBuilder {
    name: String,
    version: String,
    arch: String,
    /// Extra control fields in the order given; a name appears once.
    fields: Vec<(String, String)>,
    /// Absolute path inside the package, contents, mode.
    files: Vec<(String, Vec<u8>, u32)>,
    conffiles: Vec<String>,
    scripts: Vec<(String, Vec<u8>)>,
}

/// The maintainer scripts dpkg knows; anything else is a typo in a test.
const SCRIPTS: [&str; 5] = ["preinst", "postinst", "prerm", "postrm", "config"];

impl DebBuilder {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn architecture(&self) -> &str {
        &self.arch
    }

    /// `name_version_arch.deb`, the epoch left out as in Debian's pools.
    pub fn file_name(&self) -> String {
        let version = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, rest)| rest);
        format!("{}_{}_{}.deb", self.name, version, self.arch)
    }

    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.into();
        self
    }

    /// Sets a control field, replacing an earlier value of the same name.
    pub fn field(mut self, name: &str, value: &str) -> Self {
        match self
            .fields
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.into(),
            None => self.fields.push((name.into(), value.into())),
        }
        self
    }

    /// Adds to a relation field; repeated calls join with `, `, so
    /// `.depends("a").depends("b (>= 2)")` means `Depends: a, b (>= 2)`.
    fn relation(self, name: &str, value: &str) -> Self {
        let joined = match self.fields.iter().find(|(n, _)| n == name) {
            Some((_, old)) => format!("{old}, {value}"),
            None => value.to_string(),
        };
        self.field(name, &joined)
    }

    pub fn depends(self, relation: &str) -> Self {
        self.relation("Depends", relation)
    }
    pub fn pre_depends(self, relation: &str) -> Self {
        self.relation("Pre-Depends", relation)
    }
    pub fn recommends(self, relation: &str) -> Self {
        self.relation("Recommends", relation)
    }
    pub fn conflicts(self, relation: &str) -> Self {
        self.relation("Conflicts", relation)
    }
    pub fn breaks(self, relation: &str) -> Self {
        self.relation("Breaks", relation)
    }
    pub fn provides(self, relation: &str) -> Self {
        self.relation("Provides", relation)
    }
    pub fn replaces(self, relation: &str) -> Self {
        self.relation("Replaces", relation)
    }

    /// `Multi-Arch: same|foreign|allowed`.
    pub fn multi_arch(self, value: &str) -> Self {
        self.field("Multi-Arch", value)
    }

    /// `Essential: yes` (or removes the field).
    pub fn essential(mut self, essential: bool) -> Self {
        if essential {
            self.field("Essential", "yes")
        } else {
            self.fields.retain(|(n, _)| n != "Essential");
            self
        }
    }

    /// A regular file (mode 0644) at an absolute path.
    pub fn file(self, path: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.file_with_mode(path, bytes, 0o644)
    }

    /// An executable file (mode 0755) at an absolute path.
    pub fn executable(self, path: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.file_with_mode(path, bytes, 0o755)
    }

    fn file_with_mode(mut self, path: &str, bytes: impl AsRef<[u8]>, mode: u32) -> Self {
        self.files.retain(|(p, _, _)| p != path);
        self.files
            .push((path.into(), bytes.as_ref().to_vec(), mode));
        self
    }

    /// A file under /etc that dpkg treats as a conffile.
    pub fn conffile(mut self, path: &str, bytes: impl AsRef<[u8]>) -> Self {
        if !self.conffiles.iter().any(|p| p == path) {
            self.conffiles.push(path.into());
        }
        self.file(path, bytes)
    }

    /// `preinst`, `postinst`, `prerm`, `postrm` or `config`.
    pub fn maintainer_script(mut self, name: &str, body: impl AsRef<[u8]>) -> Self {
        self.scripts.retain(|(n, _)| n != name);
        self.scripts.push((name.into(), body.as_ref().to_vec()));
        self
    }

    /// The `DEBIAN/control` text.
    pub fn control(&self) -> String {
        let installed_kib: usize = self
            .files
            .iter()
            .map(|(_, bytes, _)| bytes.len().div_ceil(1024))
            .sum();
        let mut text = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: ferry tests <tests@ferry.invalid>\nInstalled-Size: {}\n",
            self.name,
            self.version,
            self.arch,
            installed_kib.max(1)
        );
        let mut description = None;
        for (name, value) in &self.fields {
            if name.eq_ignore_ascii_case("Description") {
                description = Some(value.clone());
            } else {
                text.push_str(&format!("{name}: {value}\n"));
            }
        }
        let description = description.unwrap_or_else(|| format!("{} for ferry's tests", self.name));
        text.push_str(&format!("Description: {description}\n"));
        text
    }

    /// Builds `dir/name_version_arch.deb` with `dpkg-deb --root-owner-group
    /// --build` and returns its path.
    pub fn build(&self, dir: &Path) -> Result<PathBuf, TestkitError> {
        for (name, _) in &self.scripts {
            if !SCRIPTS.contains(&name.as_str()) {
                return Err(TestkitError::Invalid(format!(
                    "{}: `{name}` is not a maintainer script (one of {SCRIPTS:?})",
                    self.name
                )));
            }
        }
        let tree = tempfile::Builder::new()
            .prefix("ferry-deb-")
            .tempdir()
            .map_err(TestkitError::io(std::env::temp_dir()))?;
        // The tree's own root must not carry tempdir's 0700 into the package.
        set_mode(tree.path(), 0o755)?;
        let debian = tree.path().join("DEBIAN");
        create_dirs(tree.path(), &debian)?;
        write(&debian.join("control"), self.control().as_bytes(), 0o644)?;
        if !self.conffiles.is_empty() {
            let list = self.conffiles.join("\n") + "\n";
            write(&debian.join("conffiles"), list.as_bytes(), 0o644)?;
        }
        for (name, body) in &self.scripts {
            write(&debian.join(name), body, 0o755)?;
        }
        for (path, bytes, mode) in &self.files {
            let relative = path.trim_start_matches('/');
            if relative.is_empty() || relative.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(TestkitError::Invalid(format!(
                    "{}: file path {path:?} must be absolute and plain",
                    self.name
                )));
            }
            let full = tree.path().join(relative);
            if let Some(parent) = full.parent() {
                create_dirs(tree.path(), parent)?;
            }
            write(&full, bytes, *mode)?;
        }
        std::fs::create_dir_all(dir).map_err(TestkitError::io(dir))?;
        let out = dir.join(self.file_name());
        checked(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "-Zgzip", "--build"])
                .arg(tree.path())
                .arg(&out),
        )?;
        Ok(out)
    }
}

/// Creates `dir` and its parents below `root`, each 0755 whatever the umask.
fn create_dirs(root: &Path, dir: &Path) -> Result<(), TestkitError> {
    std::fs::create_dir_all(dir).map_err(TestkitError::io(dir))?;
    let mut current = dir;
    while current != root {
        set_mode(current, 0o755)?;
        match current.parent() {
            Some(parent) => current = parent,
            None => break,
        }
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TestkitError> {
    std::fs::write(path, bytes).map_err(TestkitError::io(path))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), TestkitError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(TestkitError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_accumulate_and_fields_replace() {
        let d = deb("sdk", "1:2.0-1")
            .depends("a")
            .depends("b (>= 2)")
            .field("Section", "devel")
            .field("Section", "libs");
        let control = d.control();
        assert!(control.contains("Depends: a, b (>= 2)\n"), "{control}");
        assert!(control.contains("Section: libs\n"), "{control}");
        assert!(!control.contains("devel"));
        assert_eq!(d.file_name(), "sdk_2.0-1_all.deb");
    }

    #[test]
    fn a_misspelt_script_is_refused_before_dpkg_deb() {
        let dir = tempfile::tempdir().unwrap();
        let err = deb("sdk", "1.0")
            .maintainer_script("postinstall", "#!/bin/sh\n")
            .build(dir.path())
            .unwrap_err();
        assert!(err.to_string().contains("postinstall"), "{err}");
    }
}
