//! Exports a checkpoint to a package from Rust, with an int8 variant of the towers:
//! `cargo run -p vtde-export --example export -- CHECKPOINT_DIR OUT_DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use vtde_export::{export_with, ExportOptions, Precision};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [checkpoint, out] = args.as_slice() else {
        eprintln!("usage: export CHECKPOINT_DIR OUT_DIR");
        return ExitCode::from(2);
    };
    let options = ExportOptions::default().with_variants(vec![Precision::Int8]);
    match export_with(checkpoint, out, &options, &mut |step| eprintln!("{step}")) {
        Ok(exported) => {
            println!("wrote {}", exported.dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
