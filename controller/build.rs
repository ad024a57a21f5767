//! Embeds the repository's `buildpacks/` directory into the controller as a tar
//! (`OUT_DIR/buildpacks.tar`), served to build jobs at `/internal/buildpacks.tar`.

use std::path::PathBuf;

#[path = "src/builder/tar_dir.rs"]
mod tar_dir;

fn main() {
    println!("cargo:rerun-if-changed=../buildpacks");
    println!("cargo:rerun-if-changed=src/builder/tar_dir.rs");
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("buildpacks.tar");
    let src = manifest.join("../buildpacks");
    let tar = tar_dir::tar_dir(&src)
        .unwrap_or_else(|e| panic!("packing {} into a tar: {e}", src.display()));
    std::fs::write(&out, tar).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
