//! `ferry image inspect IMG`: an image's partition table and filesystems,
//! as text, JSON or an sfdisk script.

use std::io::Write;

use ferry_image::{inspect_path, sfdisk_script, InspectError, Inspection, Label};

use crate::cli::{Global, ImageCommand, ImageFormat};
use crate::exit::Exit;
use crate::render::{self, Failure};

pub fn run(command: ImageCommand, global: &Global) -> Result<Exit, Failure> {
    let ImageCommand::Inspect { image, format } = command;
    let inspection = inspect_path(&image).map_err(|e| inspect_failure(&e, &image))?;
    let device = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n != "-")
        .unwrap_or_else(|| "image".into());
    let text = match format {
        Some(ImageFormat::Sfdisk) => sfdisk_script(&inspection, &device),
        None if global.json => {
            render::json(&inspection);
            return Ok(Exit::Ok);
        }
        None => for_people(&inspection),
    };
    // A reader that went away is not a reason to panic.
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(Exit::Ok)
}

fn inspect_failure(error: &InspectError, image: &std::path::Path) -> Failure {
    let failure = Failure::bad_input(error.to_string()).at(image, None, None);
    match error {
        InspectError::Open { .. } => failure.hint("give the path of a disk image, or - for standard input"),
        InspectError::Table { .. } => failure.expected(
            "a disk image with an MBR or GPT partition table, plain or compressed with gzip, xz, zstd or bzip2",
        ),
    }
}

fn for_people(inspection: &Inspection) -> String {
    let (label, id) = match &inspection.label {
        Label::Dos { id } => ("dos", format!("0x{id:08x}")),
        Label::Gpt { id, .. } => ("gpt", id.clone()),
    };
    let compression = match inspection.compression.as_str() {
        "none" => "uncompressed".to_string(),
        other => format!("{other}-compressed"),
    };
    let mut out = format!(
        "{label} partition table {id}, {}-byte sectors, {} bytes {compression}\n\n",
        inspection.sector_size, inspection.size
    );
    let rows: Vec<Vec<String>> = inspection
        .partitions
        .iter()
        .map(|p| {
            let fs = p.filesystem.as_ref();
            vec![
                p.number.to_string(),
                p.start.to_string(),
                p.size.to_string(),
                p.kind.to_string(),
                if p.bootable {
                    "*".into()
                } else {
                    String::new()
                },
                p.name.clone().unwrap_or_default(),
                fs.map(|f| f.kind.clone()).unwrap_or_default(),
                fs.and_then(|f| f.label.clone()).unwrap_or_default(),
                fs.and_then(|f| f.uuid.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&render::table(
        &[
            "#", "start", "sectors", "type", "boot", "name", "fs", "label", "uuid",
        ],
        &rows,
    ));
    out
}
