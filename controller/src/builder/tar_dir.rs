//! Packs a directory into a reproducible tar (sorted names, fixed times, uid/gid 0, modes
//! 0644/0755). Shared by `build.rs` (the buildpacks embedded at compile time) and the
//! controller (`--buildpacks-dir` at run time), so it only uses `std` and `tar`.

use std::io;
use std::path::Path;

/// The tar of everything under `dir`, paths relative to it. A missing or empty directory
/// gives an empty tar.
pub fn tar_dir(dir: &Path) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    if dir.is_dir() {
        append(&mut builder, dir, Path::new(""))?;
    }
    builder.into_inner()
}

fn append(builder: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?
        .collect::<io::Result<Vec<_>>>()?
        .into_iter()
        .map(|e| e.file_name())
        .collect();
    entries.sort();
    for name in entries {
        let rel = rel.join(&name);
        let full = root.join(&rel);
        let meta = std::fs::symlink_metadata(&full)?;
        if meta.is_dir() {
            builder.append_dir(&rel, &full)?;
            append(builder, root, &rel)?;
        } else {
            builder.append_path_with_name(&full, &rel)?;
        }
    }
    Ok(())
}
