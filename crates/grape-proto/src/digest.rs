//! The digest of the generator's inputs, recorded beside the generated code so a test can tell when the
//! .proto files (or the generator) changed without the code being regenerated.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Files whose content decides the generated code, relative to the crate directory.
pub fn input_files(crate_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files: Vec<String> = std::fs::read_dir(crate_dir.join("proto"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".proto"))
        .map(|n| format!("proto/{n}"))
        .collect();
    files.sort();
    files.push("src/bin/generate.rs".to_owned());
    Ok(files)
}

/// SHA-256 over each input's path and content, hex encoded.
pub fn inputs_digest(crate_dir: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    for file in input_files(crate_dir)? {
        let content = std::fs::read(crate_dir.join(&file))?;
        hasher.update(file.as_bytes());
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
