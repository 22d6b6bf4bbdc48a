//! Detached OpenPGP signatures, checked by the tools apt itself uses:
//! `gpgv`, read with the rules of apt's gpgv method (a `VALIDSIG` and no
//! `EXPKEYSIG`/`EXPSIG`/`REVKEYSIG`/`BADSIG`/`ERRSIG`/`NO_PUBKEY`/`NODATA`), and `sqv` too when
//! installed; every verifier present must accept. The keyring is a binary
//! OpenPGP keyring (apt's `.gpg`). ferry adds no crypto of its own.
//! Clear-signed files (an `InRelease`) are checked by gpgv alone.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature: {} is missing or empty", signature.display())]
    Missing { signature: PathBuf },
    #[error("keyring {} cannot be read: {source}", keyring.display())]
    Keyring {
        keyring: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("neither sqv nor gpgv can be run (apt-get install sqv)")]
    NoVerifier,
    #[error("{tool} refused the signature {} of {}: {reason}", signature.display(), data.display())]
    Refused {
        tool: &'static str,
        signature: PathBuf,
        data: PathBuf,
        reason: String,
    },
}

/// Who signed, as the verifier reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub tool: &'static str,
    /// Fingerprints (sqv) or the verifier's status line (gpgv).
    pub signers: Vec<String>,
}

/// Checks that `signature` is a good detached signature of `data` by a
/// valid key of `keyring`.
pub fn verify_detached(
    keyring: &Path,
    signature: &Path,
    data: &Path,
) -> Result<Verified, SignatureError> {
    match std::fs::metadata(signature) {
        Ok(m) if m.len() > 0 => {}
        _ => {
            return Err(SignatureError::Missing {
                signature: signature.to_path_buf(),
            })
        }
    }
    std::fs::File::open(keyring).map_err(|source| SignatureError::Keyring {
        keyring: keyring.to_path_buf(),
        source,
    })?;
    let refused = |tool, reason: String| SignatureError::Refused {
        tool,
        signature: signature.to_path_buf(),
        data: data.to_path_buf(),
        reason,
    };
    let mut verified: Option<Verified> = None;
    // gpgv first: its status lines tell an expired or revoked key apart,
    // and apt's gpgv method refuses exactly those (sqv judges a key at the
    // time the signature was made, so it alone would accept a signature
    // made before the key expired).
    if let Ok(gpgv) = Command::new("gpgv")
        .args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .arg(signature)
        .arg(data)
        .env("LC_ALL", "C")
        .output()
    {
        let signers = gpgv_signers(&gpgv).map_err(|why| refused("gpgv", why))?;
        verified = Some(Verified {
            tool: "gpgv",
            signers,
        });
    }
    // sqv as well when installed: apt's default verifier, with its own
    // policy on weak algorithms. Both must agree.
    if let Ok(out) = Command::new("sqv")
        .arg("--keyring")
        .arg(keyring)
        .arg("--")
        .arg(signature)
        .arg(data)
        .output()
    {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let signers: Vec<String> = stdout.lines().map(|l| l.trim().to_string()).collect();
        if !out.status.success() || signers.is_empty() {
            return Err(refused("sqv", reason(&out.stderr)));
        }
        if verified.is_none() {
            verified = Some(Verified {
                tool: "sqv",
                signers,
            });
        }
    }
    verified.ok_or(SignatureError::NoVerifier)
}

/// Checks a clear-signed file (an `InRelease`) against binary keyrings
/// with gpgv, read with the rules of apt's gpgv method. sqv verifies
/// detached signatures only, so gpgv alone answers here, as it does for
/// apt on Debian 12.
pub fn verify_clearsigned(keyrings: &[PathBuf], file: &Path) -> Result<Verified, SignatureError> {
    for keyring in keyrings {
        std::fs::File::open(keyring).map_err(|source| SignatureError::Keyring {
            keyring: keyring.clone(),
            source,
        })?;
    }
    let mut command = Command::new("gpgv");
    command.args(["--status-fd", "1"]);
    for keyring in keyrings {
        command.arg("--keyring").arg(keyring);
    }
    let gpgv = command
        .arg(file)
        .env("LC_ALL", "C")
        .output()
        .map_err(|_| SignatureError::NoVerifier)?;
    let signers = gpgv_signers(&gpgv).map_err(|reason| SignatureError::Refused {
        tool: "gpgv",
        signature: file.to_path_buf(),
        data: file.to_path_buf(),
        reason,
    })?;
    Ok(Verified {
        tool: "gpgv",
        signers,
    })
}

/// The fingerprints gpgv reported a valid signature from, read with the
/// rules of apt's gpgv method, or why it refused, in words.
fn gpgv_signers(gpgv: &std::process::Output) -> Result<Vec<String>, String> {
    let status = String::from_utf8_lossy(&gpgv.stdout);
    let valid: Vec<String> = status
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] VALIDSIG "))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    let bad: Vec<&str> = status
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] "))
        .filter(|l| REFUSED.iter().any(|s| l.starts_with(s)))
        .collect();
    if !gpgv.status.success() || valid.is_empty() || !bad.is_empty() {
        let mut why = bad.iter().map(|l| describe(l)).collect::<Vec<_>>();
        if why.is_empty() {
            why.push(reason(&gpgv.stderr));
        }
        return Err(why.join("; "));
    }
    Ok(valid)
}

/// The gpgv status keywords apt's gpgv method treats as a failure.
const REFUSED: [&str; 7] = [
    "EXPKEYSIG",
    "EXPSIG",
    "REVKEYSIG",
    "BADSIG",
    "ERRSIG",
    "NO_PUBKEY",
    "NODATA",
];

fn describe(status: &str) -> String {
    let mut words = status.split_whitespace();
    let keyword = words.next().unwrap_or("");
    let key = words.next().unwrap_or("?");
    match keyword {
        "EXPKEYSIG" => format!("the key {key} has expired"),
        "EXPSIG" => format!("the signature by {key} has expired"),
        "REVKEYSIG" => format!("the key {key} is revoked"),
        "NODATA" => "the signature file holds no OpenPGP signature".to_string(),
        "BADSIG" => format!("bad signature by {key} (the file was changed)"),
        "NO_PUBKEY" => format!("the key {key} is not in the keyring"),
        _ => format!("the signature cannot be checked ({status})"),
    }
}

/// The verifier's own words, on one line.
fn reason(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "no valid signature".to_string()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_testkit::{skip_unless, Need, Signer};

    #[test]
    fn a_missing_signature_or_keyring_is_refused_before_any_verifier_runs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("bundle.tar");
        std::fs::write(&data, b"data").unwrap();
        let empty = dir.path().join("bundle.sig");
        std::fs::write(&empty, b"").unwrap();
        let keyring = dir.path().join("none.gpg");
        assert!(matches!(
            verify_detached(&keyring, &empty, &data),
            Err(SignatureError::Missing { .. })
        ));
        std::fs::write(&empty, b"not a signature").unwrap();
        assert!(matches!(
            verify_detached(&keyring, &empty, &data),
            Err(SignatureError::Keyring { .. })
        ));
        assert!(matches!(
            verify_clearsigned(std::slice::from_ref(&keyring), &data),
            Err(SignatureError::Keyring { .. })
        ));
    }

    #[test]
    fn a_changed_file_or_another_key_is_refused_and_the_signed_file_accepted() {
        skip_unless!(Need::Tool("gpg"), Need::Tool("gpgv"));
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::new("publisher").unwrap();
        let stranger = Signer::new("stranger").unwrap();
        let data = dir.path().join("bundle.tar");
        std::fs::write(&data, b"the bundle").unwrap();
        let signature = dir.path().join("bundle.sig");
        signer.detach_sign(&data, &signature).unwrap();

        let refused = verify_detached(stranger.keyring_path(), &signature, &data).unwrap_err();
        assert!(
            matches!(&refused, SignatureError::Refused { reason, .. } if reason.contains("not in the keyring")),
            "{refused}"
        );
        let changed = dir.path().join("changed.tar");
        std::fs::write(&changed, b"the bundle, changed").unwrap();
        assert!(matches!(
            verify_detached(signer.keyring_path(), &signature, &changed),
            Err(SignatureError::Refused { .. })
        ));

        let verified = verify_detached(signer.keyring_path(), &signature, &data).unwrap();
        assert_eq!(verified.tool, "gpgv");
        assert_eq!(verified.signers, [signer.fingerprint().to_string()]);

        let clearsigned = dir.path().join("InRelease");
        signer.clearsign(&data, &clearsigned).unwrap();
        let verified =
            verify_clearsigned(&[signer.keyring_path().to_path_buf()], &clearsigned).unwrap();
        assert_eq!(verified.signers, [signer.fingerprint().to_string()]);
        assert!(
            verify_clearsigned(&[stranger.keyring_path().to_path_buf()], &clearsigned).is_err()
        );
    }
}
