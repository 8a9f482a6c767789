//! `include/vtde.h` is what cbindgen makes of the crate today: a change to the C API
//! that did not regenerate the header fails here. `VTDE_BLESS=1` rewrites the header.

#![allow(clippy::unwrap_used)]

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .unwrap();
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let header = crate_dir.join("include/vtde.h");
    if std::env::var_os("VTDE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&header, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what cbindgen generates from the crate; run \
         `VTDE_BLESS=1 cargo test -p vtde-capi --test header` and commit it",
        header.display()
    );
}
